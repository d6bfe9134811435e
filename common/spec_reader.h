// Typed reading of a YAML document that collects every problem instead of stopping at the first.
// Each problem names the field by its dotted path and where it stands in the file, so a user
// fixes a whole spec in one round: `spec.training.epochs: must be an integer, got "ten"
// (job.yaml:9:13)`.
//
// The schema itself (which fields exist, their ranges) lives with the type being read, e.g.
// job_spec_yaml.cc; this class knows only YAML and types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>
#include "absl/strings/string_view.h"

#include <yaml-cpp/yaml.h>

#include "common/spec_error.h"

namespace ocs::common {

class SpecReader {
 public:
  // A node and the path that names it. An absent field has an undefined node and the position of
  // its parent, so "missing" errors still point somewhere useful.
  struct Field {
    YAML::Node node;
    std::string path;
    int line = 0;  // 1-based; 0 when unknown
    int column = 0;
    bool present() const { return node.IsDefined() && !node.IsNull(); }
  };

  explicit SpecReader(std::vector<SpecError>* errors) : errors_(errors) {}

  static Field Root(const YAML::Node& document);
  // The child `key` of a mapping field; absent when `map` is not a mapping or lacks the key.
  static Field Child(const Field& map, absl::string_view key);

  // Checks that `field` is a mapping whose keys are all in `known_keys` and unique. Unknown keys
  // get a "did you mean" suggestion. Returns false (and reports) when `field` is not a mapping.
  bool ExpectMapping(const Field& field, const std::vector<std::string>& known_keys);
  // Reports a missing field and returns false when `field` is absent or null.
  bool Require(const Field& field);

  // Each Read* leaves *out untouched and returns false when the field is absent; reports a type
  // error and returns false when the value does not have the type.
  bool ReadInt(const Field& field, int* out);
  bool ReadInt64(const Field& field, int64_t* out);
  bool ReadUint64(const Field& field, uint64_t* out);
  bool ReadDouble(const Field& field, double* out);  // finite values only
  bool ReadBool(const Field& field, bool* out);
  bool ReadString(const Field& field, std::string* out);
  bool ReadIntList(const Field& field, std::vector<int>* out);
  bool ReadDoubleList(const Field& field, std::vector<double>* out);
  bool ReadStringList(const Field& field, std::vector<std::string>* out);
  bool ReadStringMap(const Field& field, std::map<std::string, std::string>* out);

  // Reads one of a fixed set of spellings into an enum value.
  template <typename Enum>
  bool ReadEnum(const Field& field, const std::vector<std::pair<std::string, Enum>>& choices,
                Enum* out) {
    std::string text;
    if (!ReadString(field, &text)) return false;
    std::vector<std::string> names;
    for (const auto& [name, value] : choices) {
      if (name == text) {
        *out = value;
        return true;
      }
      names.push_back(name);
    }
    ReportChoice(field, text, names);
    return false;
  }

  // Reports `requirement` ("must be in (0, 1)") for `field` unless `ok`; appends what was given
  // (`shown`, or the field's text when empty). A field gets one error at most: a check of a field
  // already reported is skipped and returns false, so one bad value does not cascade.
  bool Check(const Field& field, bool ok, absl::string_view requirement,
             absl::string_view shown = "");
  // Whether no problem has been reported for `field` (rules across fields check this first).
  bool IsClean(const Field& field) const;
  // Reports `problem` for `field` as is.
  void Report(const Field& field, std::string problem);
  void ReportChoice(const Field& field, absl::string_view given,
                    const std::vector<std::string>& names);

  // How the value was written, for messages: the scalar text, or "a list", "a mapping", "null".
  static std::string Describe(const Field& field);

 private:
  template <typename T>
  bool ReadInteger(const Field& field, T* out, absl::string_view type_name);
  template <typename T>
  bool ReadScalar(const Field& field, T* out, absl::string_view type_name);
  template <typename T>
  bool ReadList(const Field& field, std::vector<T>* out,
                bool (SpecReader::*read)(const Field&, T*));

  std::vector<SpecError>* errors_;
};

}  // namespace ocs::common
