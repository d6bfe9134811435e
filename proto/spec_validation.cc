#include "proto/spec_validation.h"

#include <string>

#include "common/job_spec_warnings.h"
#include "common/job_spec_yaml.h"
#include "worker/engine/job_model.h"

namespace ocs::api {
namespace {

void ToProto(const common::SpecError& error, ocs::v1::SpecError* out) {
  out->set_field(error.field);
  out->set_problem(error.problem);
  out->set_line(error.line);
  out->set_column(error.column);
}

}  // namespace

ocs::v1::ValidateJobResponse ValidateJobSpec(absl::string_view spec_yaml,
                                             absl::string_view source) {
  ocs::v1::ValidateJobResponse response;
  std::vector<common::SpecError> errors;
  auto spec = common::ParseJobSpec(spec_yaml, source, &errors);
  if (spec.ok()) errors = worker::engine::JobModelErrors(*spec);
  response.set_valid(errors.empty());
  if (errors.empty()) {
    response.set_canonical_yaml(common::FormatJobSpecYaml(*spec));
    response.set_job_name(spec->metadata.name);
    for (const common::SpecError& warning : common::JobSpecWarnings(*spec)) {
      ToProto(warning, response.add_warnings());
    }
    return response;
  }
  for (const common::SpecError& error : errors) ToProto(error, response.add_errors());
  return response;
}

}  // namespace ocs::api
