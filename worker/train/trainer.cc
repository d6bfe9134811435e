#include "worker/train/trainer.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include <zlib.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/lr_schedule.h"
#include "worker/engine/compensation.h"
#include "worker/engine/export.h"
#include "worker/engine/flops.h"
#include "worker/engine/flops_target_search.h"
#include "worker/engine/group_saliency.h"
#include "worker/engine/model_zoo.h"
#include "worker/engine/regularization.h"
#include "worker/engine/surgery.h"
#include "worker/engine/torch_error.h"
#include "worker/files/atomic_file.h"
#include "worker/train/batches.h"
#include "worker/train/captured_step.h"
#include "worker/train/progress.h"
#include "worker/train/sgd_step.h"
#include "worker/train/trainer_state.h"

namespace ocs::worker::train {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CRC-32 over the bytes of `tensors` (copied to the CPU): equal on ranks that hold the same
// weights, bit for bit.
uint32_t Digest(const std::vector<at::Tensor>& tensors) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const at::Tensor& tensor : tensors) {
    const at::Tensor bytes = tensor.detach().to(at::kCPU).contiguous();
    crc = crc32(crc, static_cast<const Bytef*>(bytes.data_ptr()),
                static_cast<uInt>(bytes.numel() * bytes.element_size()));
  }
  return static_cast<uint32_t>(crc);
}

// Batches used right after the prune: to measure the removed channels' mean contribution, and to
// re-estimate BatchNorm statistics.
constexpr int kCompensationBatches = 8;
constexpr int kReestimationBatches = 50;
// Eager steps before a CUDA graph is recorded (cuDNN's autotuning runs in the first).
constexpr int kCaptureWarmup = 3;
// How often ranks agree on whether to stop: a cancelled rank frees its device within this many
// steps, at the cost of one tiny all-reduce per poll.
constexpr int kStopPollSteps = 10;

// bf16 autocast around the forward pass when the job asks for it. The cast-weight cache stays off
// while a CUDA graph is recorded: casts cached outside the graph would not be replayed in it.
class AutocastScope {
 public:
  AutocastScope(bool enabled, c10::Device device, bool cache)
      : enabled_(enabled), type_(device.type()) {
    if (!enabled_) return;
    at::autocast::set_autocast_cache_enabled(cache);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(type_, at::kBFloat16);
    at::autocast::set_autocast_enabled(type_, true);
#else
    if (type_ == c10::kCUDA) {
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
  }
  ~AutocastScope() {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(type_, false);
#else
    type_ == c10::kCUDA ? at::autocast::set_enabled(false) : at::autocast::set_cpu_enabled(false);
#endif
    at::autocast::clear_cache();
    at::autocast::set_autocast_cache_enabled(true);
  }

 private:
  bool enabled_;
  c10::DeviceType type_;
};

// A verdict can come from the coordinator: its mask is checked against this model's groups here,
// once, before compensation, surgery or the regularizer index channels with it.
absl::Status CheckVerdict(const common::Verdict& verdict, int epoch,
                          const std::vector<int>& group_sizes) {
  const bool prune = verdict.kind == common::Verdict::Kind::kPrune;
  if (prune && !verdict.mask) {
    return absl::InvalidArgumentError(
        absl::StrCat("prune verdict for epoch ", epoch, " carries no mask"));
  }
  if (!verdict.mask) return absl::OkStatus();
  if (absl::Status fits = common::CheckMaskFitsModel(*verdict.mask, group_sizes); !fits.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prune ? "prune" : "continue", " verdict for epoch ", epoch,
                     ": its mask does not fit the model (", fits.message(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

Trainer::Trainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Trainer::~Trainer() = default;

void Trainer::OnEpoch(std::function<void(const EpochRecord&)> callback) {
  state_->on_epoch = std::move(callback);
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(TrainerOptions options,
                                                         Collectives& collectives,
                                                         DecisionSource* decisions) {
  auto state = std::make_unique<State>(std::move(options), collectives);
  if (absl::Status status = state->Initialize(decisions); !status.ok()) return status;
  return std::unique_ptr<Trainer>(new Trainer(std::move(state)));
}

// Marks TrainingStopped's out-of-memory status.
constexpr absl::string_view kOutOfMemoryPayload = "ocs.v1/out-of-memory";

absl::Status TrainingStopped(const std::exception& e, const common::JobSpec& spec) {
  const std::string why = engine::DescribeTorchError(e);
  if (!engine::IsOutOfMemory(e)) return absl::AbortedError(absl::StrCat("training stopped: ", why));
  absl::Status status = absl::ResourceExhaustedError(
      absl::StrCat("training stopped: out of memory on device ",
                   common::ToString(spec.resources.device), " at spec.training.batchSize ",
                   spec.training.batch_size, " (a smaller batch needs less): ", why));
  status.SetPayload(kOutOfMemoryPayload, absl::Cord());
  return status;
}

bool IsOutOfMemoryStop(const absl::Status& status) {
  return status.GetPayload(kOutOfMemoryPayload).has_value();
}

// A peer that dies mid-collective, or a device out of memory, surfaces as an exception.
absl::StatusOr<RunSummary> Trainer::Run() {
  try {
    return state_->Run();
  } catch (const std::exception& e) {
    return TrainingStopped(e, state_->options.spec);
  }
}

const engine::NetworkModel& Trainer::model() const { return *state_->model; }

// ---------------------------------------------------------------------------------------------
// State: everything one rank's run holds.

Trainer::State::State(TrainerOptions options_in, Collectives& collectives_in)
    : options(std::move(options_in)), collectives(collectives_in), averager(collectives_in) {}

DeviceTotals::DeviceTotals(c10::Device device)
    : loss_(at::zeros({}, at::TensorOptions(device).dtype(at::kDouble))),
      correct_(at::zeros({}, at::TensorOptions(device).dtype(at::kDouble))) {}

void DeviceTotals::Zero() {
  loss_.zero_();
  correct_.zero_();
}

void DeviceTotals::Add(const at::Tensor& loss_sum, const at::Tensor& correct) {
  loss_.add_(loss_sum);
  correct_.add_(correct);
}

Totals DeviceTotals::Read(double count) const {
  return {loss_.item<double>(), correct_.item<double>(), count};
}

Trainer::State::~State() = default;

absl::Status Trainer::State::Initialize(DecisionSource* external_decisions) {
  const common::JobSpec& spec = options.spec;
  if (spec.resources.device == common::Device::kCuda) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(
          "spec.resources.device is cuda but this worker sees no CUDA device (set it to cpu)");
    }
    device = c10::Device(c10::kCUDA, 0);
  }
  const int world = collectives.world_size();
  local_batch = spec.training.batch_size / world;
  auto loaded = LoadDataset(spec.data, spec.model);
  if (!loaded.ok()) return loaded.status();
  data = *std::move(loaded);
  // The splits live on the training device: batches are gathered there, no copy per step.
  for (ImageSet* set : {&data.train, &data.test}) {
    set->images = set->images.to(device);
    set->labels = set->labels.to(device);
  }
  normalization = {data.mean, data.std};
  preprocess = std::make_unique<Preprocessor>(normalization, device);
  train_sums = DeviceTotals(device);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);  // shapes are fixed
  steps_per_epoch = data.train.size() / world / local_batch;
  if (steps_per_epoch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.training.batchSize ", spec.training.batch_size, " is larger than the ",
                     data.train.size(), " training examples split over ", world, " ranks"));
  }
  total_iterations = int64_t{spec.training.epochs} * steps_per_epoch;

  const auto& s = spec.model.input_shape;
  auto network = engine::BuildModel(spec.model.arch, spec.model.num_classes, {s[0], s[1], s[2]});
  if (!network.ok()) return network.status();
  dense = *std::move(network);
  auto derived = engine::ChannelGroups::Derive(
      dense, {spec.pruning.layer_prune_limit, spec.pruning.ignored_layers});
  if (!derived.ok()) return derived.status();
  groups = std::make_unique<engine::ChannelGroups>(*std::move(derived));
  model = std::make_shared<engine::NetworkModel>(dense, spec.training.seed);

  decider = std::make_unique<common::PruneDecider>(spec.stability, spec.regularization);
  if (options.dense_only) {
    own_decisions = std::make_unique<DenseOnlyDecisionSource>();
  } else if (!external_decisions) {
    own_decisions = std::make_unique<StandaloneDecisionSource>(*decider);
  }
  decisions = own_decisions ? own_decisions.get() : external_decisions;
  const engine::ModelCost cost = engine::NetworkCost(dense);
  summary.dense_flops = cost.flops;
  summary.dense_params = cost.params;
  if (options.resume) {
    if (absl::Status status = Resume(); !status.ok()) return status;
    decisions->OnResume(next_epoch, prune_mask.has_value());
  } else if (absl::Status status = StartFresh(); !status.ok()) {
    return status;
  }
  model->to(device);
  if (device.is_cuda()) model->UseChannelsLast();
  MakeOptimizer();
  if (options.resume) RestoreMomentum();
  BroadcastModel();  // every rank starts from rank 0's weights
  return absl::OkStatus();
}

void Trainer::State::MakeOptimizer() {
  const common::OptimizerSpec& o = options.spec.training.optimizer;
  optimizer =
      std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(o.lr)
                                                                   .momentum(o.momentum)
                                                                   .nesterov(o.nesterov)
                                                                   .weight_decay(o.weight_decay));
}

std::vector<at::Tensor> Trainer::State::ModelTensors() const {
  std::vector<at::Tensor> tensors = model->parameters();
  for (const at::Tensor& buffer : model->buffers()) tensors.push_back(buffer);
  return tensors;
}

void Trainer::State::BroadcastModel() {
  if (collectives.world_size() == 1) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors = ModelTensors();
  collectives.Broadcast(tensors, 0);
}

void Trainer::State::AverageBatchNormStatistics() {
  if (collectives.world_size() == 1) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> buffers = model->buffers();
  collectives.AllReduceSum(buffers);
  for (at::Tensor& buffer : buffers) buffer.div_(collectives.world_size());
}

// Sums the three totals over ranks (on the training device: NCCL reduces GPU tensors only).
Totals Trainer::State::AllRanks(Totals totals) {
  if (collectives.world_size() == 1) return totals;
  std::vector<at::Tensor> t = {
      at::tensor({totals.loss, totals.correct, totals.count}, at::kDouble).to(device)};
  collectives.AllReduceSum(t);
  const at::Tensor sums = t[0].cpu();
  return {sums[0].item<double>(), sums[1].item<double>(), sums[2].item<double>()};
}

// Whether any rank was asked to stop. Every rank must leave at the same step, or one would wait
// in a collective for a peer that already left: the flag is agreed on through the group.
bool Trainer::State::StopAgreed() {
  const bool local = options.stop_requested && options.stop_requested();
  if (collectives.world_size() == 1) return local;
  std::vector<at::Tensor> flag = {at::full({1}, local ? 1.0 : 0.0, at::kFloat).to(device)};
  collectives.AllReduceSum(flag);
  return flag[0].item<float>() > 0;
}

// ---------------------------------------------------------------------------------------------
// The loop.

absl::StatusOr<RunSummary> Trainer::State::Run() {
  const auto start = Clock::now();
  const int epochs = options.spec.training.epochs;
  for (int epoch = next_epoch; epoch < epochs; ++epoch) {
    common::SetLogEpoch(epoch);
    EpochRecord record;
    record.epoch = epoch;
    if (absl::Status status = Boundary(epoch, &record); !status.ok()) return status;
    if (absl::Status status = TrainEpoch(epoch, &record); !status.ok()) return status;
    AverageBatchNormStatistics();
    const auto eval_start = Clock::now();
    const Totals test = Evaluate();
    record.timings.eval_s = Since(eval_start);
    record.test_loss = test.loss / test.count;
    record.test_accuracy = test.correct / test.count;
    const engine::ModelCost cost = engine::NetworkCost(model->network());
    record.flops = cost.flops;
    record.params = cost.params;
    summary.epochs.push_back(record);
    next_epoch = epoch + 1;
    Report(record, Since(start));
    const int every = options.spec.checkpoint.every_epochs;
    const bool stop_here = epoch == options.stop_after_epoch;
    if ((every > 0 && next_epoch % every == 0) || stop_here) {
      if (absl::Status status = SaveCheckpoint(); !status.ok()) return status;
    }
    if (stop_here) {
      summary.wall_seconds = Since(start);
      return summary;
    }
  }
  summary.finished = true;
  summary.final_accuracy = summary.epochs.empty() ? 0 : summary.epochs.back().test_accuracy;
  const engine::ModelCost final_cost = engine::NetworkCost(model->network());
  summary.final_flops = final_cost.flops;
  summary.final_params = final_cost.params;
  summary.wall_seconds = Since(start);
  if (collectives.rank() == 0) {
    if (absl::Status status = Export(); !status.ok()) return status;
  }
  return summary;
}

void Trainer::State::Report(const EpochRecord& record, double elapsed) {
  if (on_epoch) on_epoch(record);
  if (collectives.rank() != 0 || options.quiet) return;
  const int done = static_cast<int>(summary.epochs.size());
  const int left = options.spec.training.epochs - record.epoch - 1;
  std::printf("%s\n", FormatEpochLine(record, options.spec.training.epochs,
                                      done > 0 ? elapsed / done * left : 0)
                          .c_str());
  std::fflush(stdout);
}

absl::Status Trainer::State::Boundary(int epoch, EpochRecord* record) {
  BoundaryReport report;
  report.epoch = epoch;
  if (!summary.epochs.empty()) {
    const EpochRecord& last = summary.epochs.back();
    report.train_loss = last.train_loss, report.train_accuracy = last.train_accuracy;
    report.test_loss = last.test_loss, report.test_accuracy = last.test_accuracy;
    report.learning_rate = last.lr;
  }
  const engine::ModelCost cost = engine::NetworkCost(model->network());
  report.flops = cost.flops, report.params = cost.params;
  if (collectives.world_size() > 1) report.weights_digest = Digest(ModelTensors());
  if (decisions->WantsMask(epoch)) {
    const auto start = Clock::now();
    auto mask = ComputeMask();
    if (!mask.ok()) return mask.status();
    report.mask = *std::move(mask);
    record->timings.mask_s = Since(start);
  }
  auto verdict = decisions->Decide(report);
  if (!verdict.ok()) return verdict.status();
  if (absl::Status valid = CheckVerdict(*verdict, epoch, groups->sizes()); !valid.ok()) {
    return valid;
  }
  record->phase = verdict->phase;
  if (verdict->point) record->j = verdict->point->j, record->j_bar = verdict->point->j_bar;
  if (regularizer && GroupLasso()) DropCapturedStep();
  regularizer.reset();
  lambda = 0;
  if (verdict->kind == common::Verdict::Kind::kPrune) return Prune(epoch, *verdict->mask);
  if (verdict->lambda > 0 && verdict->mask) {
    lambda = verdict->lambda;
    regularizer = std::make_unique<engine::ChannelRegularizer>(*model, *groups, *verdict->mask);
    if (GroupLasso()) DropCapturedStep();
  }
  record->lambda = lambda;
  return absl::OkStatus();
}

absl::StatusOr<common::Mask> Trainer::State::ComputeMask() {
  // Rank 0 computes M_t; the others take its bytes, so every rank decides on the same mask.
  std::string encoded;
  if (collectives.rank() == 0) {
    const auto importance =
        engine::GroupSaliency(*model, *groups, options.spec.pruning.cost_weighting);
    auto result = engine::SearchSubnetwork(
        model->network(), *groups, importance,
        {options.spec.pruning.target_flops_reduction, options.spec.pruning.round_to});
    if (!result.ok()) return result.status();
    if (!result->reached && !warned_unreachable) {
      common::LogWarning(result->note);
      warned_unreachable = true;
    }
    encoded = common::EncodeMask(result->mask);
  }
  if (collectives.world_size() > 1) {
    // On the training device: NCCL broadcasts GPU tensors only.
    std::vector<at::Tensor> length = {
        at::tensor({static_cast<int64_t>(encoded.size())}, at::kLong).to(device)};
    collectives.Broadcast(length, 0);
    at::Tensor bytes = at::zeros({length[0].item<int64_t>()}, at::kByte);
    if (collectives.rank() == 0) std::memcpy(bytes.data_ptr(), encoded.data(), encoded.size());
    std::vector<at::Tensor> payload = {bytes.to(device)};
    collectives.Broadcast(payload, 0);
    const at::Tensor received = payload[0].cpu();
    encoded.assign(reinterpret_cast<const char*>(received.data_ptr()), received.numel());
  }
  return common::DecodeMask(encoded);
}

absl::Status Trainer::State::TrainEpoch(int epoch, EpochRecord* record) {
  const common::TrainingSpec& training = options.spec.training;
  model->train();
  EpochBatches batches(data.train, local_batch, collectives.rank(), collectives.world_size(),
                       training.seed, epoch, /*shuffle=*/true);
  at::Generator generator = at::detail::createCPUGenerator(
      training.seed * 7919 + static_cast<uint64_t>(epoch) * 104729 + collectives.rank());
  const bool augment = options.spec.data.augment;
  const Augmentation draws =
      augment ? DrawAugmentation(batches, generator, device) : Augmentation{};
  ProgressBar bar(options.progress_bar && collectives.rank() == 0);
  train_sums.Zero();
  double examples = 0;
  const auto epoch_start = Clock::now();
  for (int64_t i = 0; i < batches.size(); ++i) {
    if (i % kStopPollSteps == 0 && StopAgreed()) {
      return absl::CancelledError(absl::StrCat("stopped in epoch ", epoch));
    }
    auto t = Clock::now();
    auto [images, labels] = batches.Batch(i);
    const auto [begin, count] = batches.Range(i);
    const Augmentation crops = augment ? draws.Slice(begin, count) : Augmentation{};
    const at::Tensor x = (*preprocess)(images, augment ? &crops : nullptr);
    record->timings.data_s += Since(t);

    t = Clock::now();
    record->lr =
        common::LearningRate(training.optimizer, training.schedule, iteration, total_iterations);
    for (auto& group : optimizer->param_groups()) {
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(record->lr);
    }
    ForwardBackward(x, labels);
    record->timings.compute_s += Since(t);

    t = Clock::now();
    averager.Average(model->parameters());
    const double allreduce_s = Since(t);
    record->timings.allreduce_s += allreduce_s;

    t = Clock::now();
    MultiTensorSgdStep(*optimizer, record->lr);
    if (regularizer && !GroupLasso()) regularizer->ShrinkDecoupled(lambda, record->lr);
    record->timings.compute_s += Since(t);
    examples += count;
    ++iteration;
    bar.Update(i + 1, batches.size());
    if (options.on_step) options.on_step({epoch, i + 1, batches.size(), allreduce_s, count});
  }
  bar.Clear();
  const Totals totals =
      AllRanks(train_sums.Read(examples));  // waits for the device to finish the epoch
  const double seconds = Since(epoch_start);
  record->train_loss = totals.loss / totals.count;
  record->train_accuracy = totals.correct / totals.count;
  record->images_per_second = totals.count / seconds;
  return absl::OkStatus();
}

bool Trainer::State::GroupLasso() const {
  return options.spec.regularization.mode == common::RegularizationMode::kGroupLasso;
}

// Forward, loss, backward and the group-lasso gradient of one batch; the loss and the correct
// predictions are added to `sums` on the device (reading them per step would stall the GPU).
void Trainer::State::StepBody(const at::Tensor& x, const at::Tensor& y, bool capturing) {
  at::Tensor logits;
  {
    AutocastScope autocast(options.spec.training.precision == common::Precision::kBf16, device,
                           /*cache=*/!capturing);
    logits = model->forward(x);
  }
  const at::Tensor loss = at::cross_entropy_loss(logits.to(at::kFloat), y);
  loss.backward();
  if (regularizer && GroupLasso()) regularizer->AddGroupLassoGradient(lambda);
  at::NoGradGuard no_grad;
  train_sums.Add(loss.detach() * y.size(0), logits.argmax(1).eq(y).sum());
}

void Trainer::State::ForwardBackward(const at::Tensor& x, const at::Tensor& y) {
  if (device.is_cuda() && options.cuda_graphs && !graphs_failed && !captured) CaptureStep(x, y);
  if (captured) {
    captured->Replay(x, y);
    return;
  }
  ClearGradients(model->parameters());
  StepBody(x, y, /*capturing=*/false);
}

void Trainer::State::CaptureStep(const at::Tensor& x, const at::Tensor& y) {
  // The warm-up steps must leave no trace: BatchNorm statistics and totals are restored after.
  std::vector<at::Tensor> saved;
  for (const at::Tensor& buffer : model->buffers()) saved.push_back(buffer.clone());
  auto step = CapturedStep::Capture(
      [&](const at::Tensor& images, const at::Tensor& labels) {
        StepBody(images, labels, /*capturing=*/true);
      },
      x, y, kCaptureWarmup, [&] { ClearGradients(model->parameters()); });
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> buffers = model->buffers();
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i].copy_(saved[i]);
  train_sums.Zero();  // captures happen at an epoch's first step, before anything was added
  if (!step.ok()) {
    graphs_failed = true;
    common::LogWarning(
        absl::StrCat(step.status().message(), "; training continues with eager steps"));
    ClearGradients(model->parameters());
    return;
  }
  captured = *std::move(step);
  ++summary.cuda_graph_captures;
}

void Trainer::State::DropCapturedStep() {
  if (!captured) return;
  captured.reset();
  ClearGradients(model->parameters());  // they lived in the graph's memory
}

Totals Trainer::State::Evaluate() {
  const bool was_training = model->is_training();
  model->eval();
  at::NoGradGuard no_grad;
  EpochBatches batches(data.test, 2 * local_batch, collectives.rank(), collectives.world_size(), 0,
                       0, /*shuffle=*/false);
  DeviceTotals sums(device);
  double examples = 0;
  for (int64_t i = 0; i < batches.size(); ++i) {
    auto [images, labels] = batches.Batch(i);
    const at::Tensor x = (*preprocess)(images, nullptr);
    at::Tensor logits;
    {
      AutocastScope autocast(options.spec.training.precision == common::Precision::kBf16, device,
                             /*cache=*/true);
      logits = model->forward(x);
    }
    logits = logits.to(at::kFloat);
    sums.Add(at::cross_entropy_loss(logits, labels, {}, at::Reduction::Sum),
             logits.argmax(1).eq(labels).sum());
    examples += labels.size(0);
  }
  model->train(was_training);
  return AllRanks(sums.Read(examples));
}

absl::Status Trainer::State::Prune(int epoch, const common::Mask& mask) {
  DropCapturedStep();  // the surgery replaces the tensors the graph reads and writes
  const Totals before = Evaluate();
  summary.accuracy_before_prune = before.correct / before.count;
  // Training batches without augmentation for the fold, with it for the statistics.
  EpochBatches batches(data.train, local_batch, collectives.rank(), collectives.world_size(),
                       options.spec.training.seed, epoch, /*shuffle=*/true);
  at::Generator generator = at::detail::createCPUGenerator(options.spec.training.seed + epoch);
  const Augmentation draws = DrawAugmentation(batches, generator, device);
  auto batch = [&](int k, bool augment) {
    const int64_t i = k % batches.size();
    const Augmentation crops = draws.Slice(batches.Range(i).first, batches.Range(i).second);
    return (*preprocess)(batches.Batch(i).first, augment ? &crops : nullptr);
  };
  const engine::Compensation compensation = engine::MeasureCompensation(
      *model, *groups, mask, kCompensationBatches, [&](int k) { return batch(k, false); });
  if (absl::Status status =
          engine::PruneModel(*model, *groups, mask, engine::CarryOptimizerState(*optimizer));
      !status.ok()) {
    return status;
  }
  const int compensated = engine::ApplyCompensation(*model, compensation);
  if (device.is_cuda()) model->UseChannelsLast();
  engine::ReestimateBatchNorm(*model, kReestimationBatches,
                              [&](int k) { return batch(k, options.spec.data.augment); });
  AverageBatchNormStatistics();
  BroadcastModel();  // the fold used each rank's own batches: rank 0's result wins
  const Totals after = Evaluate();
  summary.accuracy_after_prune = after.correct / after.count;
  summary.prune_epoch = epoch;
  prune_mask = mask;
  const engine::ModelCost cost = engine::NetworkCost(model->network());
  if (collectives.rank() == 0) {
    common::LogInfo(absl::StrFormat(
        "pruned before epoch %d/%d (index %d) to %.3f M FLOPs (%.2f%% fewer), %d consumers "
        "compensated; test accuracy %.2f%% before the prune, %.2f%% right after",
        epoch + 1, options.spec.training.epochs, epoch, cost.flops / 1e6,
        100.0 * (1.0 - double(cost.flops) / summary.dense_flops), compensated,
        100 * *summary.accuracy_before_prune, 100 * *summary.accuracy_after_prune));
  }
  // No checkpoint here: one written now would hold the pruned model under "before epoch
  // <epoch>", and a restart from it would ask the coordinator to decide this boundary again for a
  // model that has no mask left to give. A restart resumes before the prune and prunes again:
  // the weights, the mask and the replayed decider are the same, so is the prune.
  common::CrashPoint(common::crash_point::kPruned);
  return absl::OkStatus();
}

absl::Status Trainer::State::Export() {
  // Both files are written whole or not at all, into a folder created if no checkpoint made it.
  const std::string model_path = options.output_dir + "/model.pt";
  if (absl::Status status = engine::ExportTorchScript(*model, model_path); !status.ok()) {
    return status;
  }
  const common::Mask mask = prune_mask ? *prune_mask : common::DenseMask(groups->sizes());
  const std::string report_path = options.output_dir + "/report.json";
  const std::string report =
      ReportJson(engine::PruneReportJson(dense, model->network(), *groups, mask));
  if (absl::Status status = files::WriteAtomically(report_path, report); !status.ok()) {
    return status;
  }
  common::LogInfo(absl::StrCat("exported ", model_path, " and ", report_path));
  return absl::OkStatus();
}

}  // namespace ocs::worker::train
