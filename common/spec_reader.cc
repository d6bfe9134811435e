#include "common/spec_reader.h"

#include <cmath>
#include <regex>
#include <set>
#include <type_traits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/suggest.h"
#include "common/utf8.h"

namespace ocs::common {
namespace {

std::string JoinPath(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

SpecReader::Field At(YAML::Node node, std::string path) {
  SpecReader::Field field{std::move(node), std::move(path)};
  const YAML::Mark mark = field.node.Mark();
  if (!mark.is_null()) {
    field.line = mark.line + 1;
    field.column = mark.column + 1;
  }
  return field;
}

}  // namespace

SpecReader::Field SpecReader::Root(const YAML::Node& document) { return At(document, ""); }

SpecReader::Field SpecReader::Child(const Field& map, absl::string_view key) {
  Field absent{YAML::Node(YAML::NodeType::Undefined), JoinPath(map.path, key), map.line,
               map.column};
  if (!map.node.IsMap()) return absent;
  // Only a const node may be indexed without inserting the key.
  const YAML::Node& parent = map.node;
  YAML::Node child = parent[std::string(key)];
  if (!child.IsDefined()) return absent;
  return At(child, absent.path);
}

bool SpecReader::ExpectMapping(const Field& field, const std::vector<std::string>& known_keys) {
  if (!field.node.IsMap()) {
    Report(field, absl::StrCat("must be a mapping, got ", Describe(field)));
    return false;
  }
  std::set<std::string> seen;
  for (const auto& entry : field.node) {
    Field key = At(entry.first, field.path);
    if (!entry.first.IsScalar()) {
      Report(key, absl::StrCat("field names must be plain strings, got ", Describe(key)));
      continue;
    }
    const std::string& name = entry.first.Scalar();
    key.path = JoinPath(field.path, name);
    if (!seen.insert(name).second) {
      Report(key, "is given more than once");
      continue;
    }
    if (std::find(known_keys.begin(), known_keys.end(), name) != known_keys.end()) continue;
    std::string problem = "unknown field";
    if (auto guess = ClosestMatch(name, known_keys)) {
      absl::StrAppend(&problem, " (did you mean \"", *guess, "\"?)");
    } else {
      absl::StrAppend(&problem, " (known fields: ", absl::StrJoin(known_keys, ", "), ")");
    }
    Report(key, problem);
  }
  return true;
}

bool SpecReader::Require(const Field& field) {
  if (field.present()) return true;
  Report(field, "is required");
  return false;
}

template <typename T>
bool SpecReader::ReadScalar(const Field& field, T* out, absl::string_view type_name) {
  if (!field.present()) return false;
  T value;
  if (!field.node.IsScalar() || !YAML::convert<T>::decode(field.node, value)) {
    Report(field, absl::StrCat("must be ", type_name, ", got ", Describe(field)));
    return false;
  }
  *out = value;
  return true;
}

template <typename T>
bool SpecReader::ReadInteger(const Field& field, T* out, absl::string_view type_name) {
  if (!field.present()) return false;
  // Decimal only: yaml-cpp would read `014` as octal 12 and `0xE` as 14, which YAML 1.2 and a
  // reader of the spec would not.
  static const std::regex kDecimal("[-+]?[0-9]+");
  const bool decimal = field.node.IsScalar() && std::regex_match(field.node.Scalar(), kDecimal);
  // A negative value for an unsigned field is the wrong kind of number, not one out of range.
  const bool negative = std::is_unsigned_v<T> && decimal && field.node.Scalar()[0] == '-';
  if (!decimal || negative) {
    Report(field, absl::StrCat("must be ", type_name, ", got ", Describe(field)));
    return false;
  }
  T value;
  if (!absl::SimpleAtoi(field.node.Scalar(), &value)) {
    Report(field, absl::StrCat("is out of range, got ", Describe(field)));
    return false;
  }
  *out = value;
  return true;
}

bool SpecReader::ReadInt(const Field& field, int* out) {
  return ReadInteger(field, out, "an integer");
}
bool SpecReader::ReadInt64(const Field& field, int64_t* out) {
  return ReadInteger(field, out, "an integer");
}
bool SpecReader::ReadUint64(const Field& field, uint64_t* out) {
  return ReadInteger(field, out, "a non-negative integer");
}
bool SpecReader::ReadBool(const Field& field, bool* out) {
  return ReadScalar(field, out, "true or false");
}

bool SpecReader::ReadDouble(const Field& field, double* out) {
  double value = 0;
  if (!ReadScalar(field, &value, "a number")) return false;
  if (!std::isfinite(value)) {
    Report(field, absl::StrCat("must be a finite number, got ", Describe(field)));
    return false;
  }
  *out = value;
  return true;
}

bool SpecReader::ReadString(const Field& field, std::string* out) {
  if (!field.present()) return false;
  if (!field.node.IsScalar()) {
    Report(field, absl::StrCat("must be a string, got ", Describe(field)));
    return false;
  }
  *out = field.node.Scalar();
  return true;
}

template <typename T>
bool SpecReader::ReadList(const Field& field, std::vector<T>* out,
                          bool (SpecReader::*read)(const Field&, T*)) {
  if (!field.present()) return false;
  if (!field.node.IsSequence()) {
    Report(field, absl::StrCat("must be a list, got ", Describe(field)));
    return false;
  }
  std::vector<T> values;
  bool ok = true;
  for (size_t i = 0; i < field.node.size(); ++i) {
    Field item = At(field.node[i], absl::StrCat(field.path, "[", i, "]"));
    T value{};
    if (!item.present()) {
      Report(item, "must not be empty");
      ok = false;
    } else if ((this->*read)(item, &value)) {
      values.push_back(std::move(value));
    } else {
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
  return ok;
}

bool SpecReader::ReadIntList(const Field& field, std::vector<int>* out) {
  return ReadList(field, out, &SpecReader::ReadInt);
}
bool SpecReader::ReadDoubleList(const Field& field, std::vector<double>* out) {
  return ReadList(field, out, &SpecReader::ReadDouble);
}
bool SpecReader::ReadStringList(const Field& field, std::vector<std::string>* out) {
  return ReadList(field, out, &SpecReader::ReadString);
}

bool SpecReader::ReadStringMap(const Field& field, std::map<std::string, std::string>* out) {
  if (!field.present()) return false;
  if (!field.node.IsMap()) {
    Report(field, absl::StrCat("must be a mapping of strings, got ", Describe(field)));
    return false;
  }
  std::map<std::string, std::string> values;
  bool ok = true;
  for (const auto& entry : field.node) {
    Field key = At(entry.first, field.path);
    std::string name;
    if (!key.present()) {  // `~: x` would otherwise vanish, taking no error with it
      Report(key, "keys must be strings, got null");
      ok = false;
      continue;
    }
    if (!ReadString(key, &name)) {
      ok = false;
      continue;
    }
    Field value = At(entry.second, JoinPath(field.path, name));
    std::string text;
    if (!value.present()) {
      text.clear();  // `key:` with no value is an empty label value, as in Kubernetes
    } else if (!ReadString(value, &text)) {
      ok = false;
      continue;
    }
    if (!values.emplace(name, text).second) {
      Report(value, "is given more than once");
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
  return ok;
}

bool SpecReader::Check(const Field& field, bool ok, absl::string_view requirement,
                       absl::string_view shown) {
  if (!IsClean(field)) return false;
  if (!ok) {
    Report(field, absl::StrCat(requirement, ", got ", shown.empty() ? Describe(field) : shown));
  }
  return ok;
}

bool SpecReader::IsClean(const Field& field) const {
  return std::none_of(errors_->begin(), errors_->end(),
                      [&](const SpecError& e) { return e.field == field.path; });
}

void SpecReader::Report(const Field& field, std::string problem) {
  // The one place that guarantees every message is UTF-8, which protobuf strings require:
  // yaml-cpp can hand back scalars that are not UTF-8 even from UTF-8 text (found by the fuzzer:
  // aliases around NUL bytes), and callers quote such scalars.
  errors_->push_back(SpecError{ReplaceInvalidUtf8(field.path), ReplaceInvalidUtf8(problem),
                               field.line, field.column});
}

void SpecReader::ReportChoice(const Field& field, absl::string_view given,
                              const std::vector<std::string>& names) {
  std::string problem = absl::StrCat("unknown value \"", given, "\"");
  if (auto guess = ClosestMatch(given, names)) {
    absl::StrAppend(&problem, " (did you mean \"", *guess, "\"?)");
  }
  absl::StrAppend(&problem, "; one of: ", absl::StrJoin(names, ", "));
  Report(field, problem);
}

std::string SpecReader::Describe(const Field& field) {
  const YAML::Node& node = field.node;
  if (!node.IsDefined()) return "nothing (the field is missing)";
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar: {
      // Long or binary junk is cut so that one bad field cannot flood the terminal. The cut
      // falls on a character boundary so that "é..." stays whole; Report, not this cut, is
      // what guarantees the message is UTF-8.
      constexpr size_t kMaxShown = 60;
      std::string text = OneLine(node.Scalar(), kMaxShown);
      if (text.size() < node.Scalar().size()) text += "...";
      // Quoted only where the bare text would be ambiguous in a message.
      const bool quote = text.empty() || text.find_first_of(" \t,:") != std::string::npos;
      return quote ? absl::StrCat("\"", text, "\"") : text;
    }
    default:
      return "an undefined value";
  }
}

}  // namespace ocs::common
