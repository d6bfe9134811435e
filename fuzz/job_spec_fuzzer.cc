// libFuzzer target: the job-spec parser. Any bytes either fail with problems to show, or parse
// into a spec whose canonical form parses back to the same spec; a valid spec's model is then
// built and grouped as validation does, which must not crash for any shape the parser allows.
#include <cstdint>
#include <cstdlib>

#include "common/job_spec_yaml.h"
#include "common/utf8.h"
#include "worker/engine/job_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<ocs::common::SpecError> errors;
  auto spec = ocs::common::ParseJobSpec(text, "fuzz.yaml", &errors);
  if (spec.ok() != errors.empty()) std::abort();  // a failure always names its problems
  for (const auto& e : errors) {                  // messages travel in protobuf strings
    if (ocs::common::FirstInvalidUtf8Byte(e.field) ||
        ocs::common::FirstInvalidUtf8Byte(e.problem)) {
      std::abort();
    }
  }
  if (!spec.ok()) return 0;
  auto again = ocs::common::ParseJobSpec(ocs::common::FormatJobSpecYaml(*spec), "canonical");
  if (!again.ok() || !(*again == *spec)) std::abort();
  (void)ocs::worker::engine::JobModelErrors(*spec);
  return 0;
}
