#!/usr/bin/env bash
# The GPU check (issue 16): one command that turns a lent GPU into the project's GPU evidence.
#
#   make gpu-check                 # on the GPU machine, through the device tool (see docs/gpu-check.md)
#   make gpu-check DRY_RUN=1       # the CPU rehearsal: tiny sizes, the same code paths
#
# Parts, each with its own time budget (seconds, GPU_CHECK_BUDGET_<PART>); a part that runs over
# is cut (SIGINT, then SIGKILL 15 s later) and the script goes on with the next one:
#   env       GPU, driver, torch / CUDA versions
#   tests     the gpu-marked tests (pytest -m gpu)
#   bench     faceinpaint bench on CUDA, three calls (search; vaegan; dcgan+landmarks+data), each
#             with the matmul peak and the FLOP counts: achieved TFLOP/s and MFU per timed row
#   profile   torch.profiler: where a VAE-GAN step's and a search iteration's time goes
#   dcgan     DCGAN training at paper width on celeba-half for a fixed time (trainer.max_time)
#   search    faceinpaint eval, thesis masks (centre, left, right), 64 x 1000 search + classical fills
#   encoder   OPTIONAL: the encoder-initialised search, run only when its code, a celeba-half
#             encoder config (configs/encoder/celeba-half*.yaml) and `eval --overrides` exist
#   curves    issue 13 item 2, with the encoder part's E: hole PSNR / SSIM / total loss against
#             candidates x iterations, random starts (up to the thesis's 64 x 1000) and E starts
#             (up to a tenth of it), same faces and masks (scripts/search_curves.py), plot + table
#   vaegan    VAE-GAN training at paper width for a fixed time: stage transitions and throughput
#   report    $OUT/gpu-check.jsonl + gpu-check.md + a few PNGs + gpu-check.log
# GPU_CHECK_PARTS="dcgan,search,report" runs some of them (each call starts from an empty work
# folder unless GPU_CHECK_WORK names one; the report reads whatever exists).
#
# Inputs: celeba-half in GPU_DATA (default .data/celeba-half, an ignored folder that travels with
# `carry`; `make gpu-data` fills it), optionally GPU_DATA/../landmarks-64.ckpt (a LandmarkNet
# checkpoint: adds the search's landmark term); wheels in .whl (`make gpu-wheels`), installed
# first when present. Output: OUT (default outputs/gpu-check).
set -u -o pipefail

# Everything runs inside main(), parsed whole before it starts: editing this file while it runs
# cannot change what a running check does.
main() {
DRY_RUN=${DRY_RUN:-0}
SECONDS=0
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT:-outputs/gpu-check}
DATA=${GPU_DATA:-.data/celeba-half}
LANDMARKS=${GPU_LANDMARKS:-$(dirname "$DATA")/landmarks-64.ckpt}
WORK=${GPU_CHECK_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}
PARTS=${GPU_CHECK_PARTS:-env,tests,bench,profile,dcgan,search,encoder,curves,vaegan,report}
mkdir -p "$OUT_DIR" "$WORK"
LOG="$WORK/gpu-check.log"
PARTS_JSONL="$WORK/parts.jsonl"
: >"$PARTS_JSONL"

# budget PART DEFAULT: seconds for PART (GPU_CHECK_BUDGET_PART overrides). The dry run's defaults
# are 12x the GPU's: on a shared 2-core CPU starting Python alone can take 20 s or more.
budget() {
  local var="GPU_CHECK_BUDGET_$(echo "$1" | tr '[:lower:]-' '[:upper:]_')"
  echo "${!var:-$(($2 * ($DRY_RUN == 1 ? 12 : 1)))}"
}
wanted() { [[ ",$PARTS," == *",$1,"* ]]; }
# the whole run's deadline (seconds from the start): the device tool allows 600 per command
DEADLINE=$(budget deadline 560)
hms() { printf '00:%02d:%02d:%02d' $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60)); }  # max_time

# part NAME BUDGET COMMAND...: run COMMAND with a time budget, log it, record how it ended.
part() {
  local name=$1 seconds=$2
  shift 2
  local start=$SECONDS rc status
  echo "=== part $name (budget ${seconds}s): $*" | tee -a "$LOG"
  timeout -k 15 -s INT "$seconds" "$@" >>"$LOG" 2>&1
  rc=$?
  local elapsed=$((SECONDS - start))
  # timeout's 124 (or 137 after SIGKILL); a Trainer that caught the SIGINT exits 1 on its own
  if ((rc == 124 || rc == 137 || (rc != 0 && elapsed >= seconds))); then
    status=cut
  elif ((rc == 0)); then
    status=ok
  else
    status=failed
  fi
  echo "=== part $name: $status (exit $rc) after ${elapsed}s" | tee -a "$LOG"
  printf '{"record": "part", "part": "%s", "status": "%s", "exit": %d, "elapsed_s": %d, "budget_s": %d}\n' \
    "$name" "$status" "$rc" "$elapsed" "$seconds" >>"$PARTS_JSONL"
}
skip() {  # skip NAME REASON
  echo "=== part $1: skipped ($2)" | tee -a "$LOG"
  printf '{"record": "part", "part": "%s", "status": "skipped", "reason": "%s"}\n' "$1" "$2" >>"$PARTS_JSONL"
}

if [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null && [[ $DRY_RUN != 1 ]]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 || echo "wheel install failed (see log)" | tee -a "$LOG"
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 WANDB_MODE=disabled
export FACEINPAINT_CACHE=${FACEINPAINT_CACHE:-$WORK/cache}
FI=("$PYTHON" -m faceinpaint)
declare -A MASK_SPECS=([center]='{kind: center, side: 0.5}' [left]='{kind: left}' [right]='{kind: right}')

if [[ $DRY_RUN == 1 ]]; then
  DEVICE=cpu ACCEL=cpu
  BENCH=(--quick true --devices '[cpu]' --repeats 1 --warmup 0 --dlib false --threads 1)
  DCGAN_SIZE=(--model.init_args.latent_dim 16 --model.init_args.ngf 8 --model.init_args.ndf 8
    --trainer.max_steps 4 --trainer.log_every_n_steps 1 --data.batch_size 8 --data.num_workers 0
    --trainer.val_check_interval 2 --trainer.limit_val_batches 1 --model.init_args.val_candidates 2
    --model.init_args.val_iterations 2)
  SEARCH_SETTINGS='candidates: 2, iterations: 2' SEARCH=(--nn_bank_size 16)
  ENCODER_SIZE=(--model.init_args.base_channels 4 --model.init_args.max_channels 8
    --trainer.max_steps 4 --trainer.val_check_interval 2 --trainer.limit_val_batches 1
    --trainer.log_every_n_steps 1 --data.batch_size 8 --data.num_workers 0)
  SEARCH_MASKS=(center)
  CURVES_RANDOM=(--candidates 2 --subsets 1 2 --snapshots 0 1 2 --poisson_iterations 2)
  CURVES_ENCODER=(--candidates 2 --subsets 1 2 --snapshots 0 1 --poisson_iterations 2)
  CURVES_REFERENCE=k2_t2
  VAEGAN_SIZE=(--data.image_size 32 --model.init_args.latent_dim 16
    --model.init_args.base_channels 4 --model.init_args.max_channels 8 --model.init_args.num_layers 3
    --model.init_args.critic_base_channels 4 --model.init_args.critic_max_channels 8
    --model.init_args.local_size 16 --model.init_args.stage_boundaries '[2, 4, 6]'
    --trainer.log_every_n_steps 1 --trainer.val_check_interval 3 --trainer.limit_val_batches 1
    --data.batch_size 4 --data.eval_batch_size 4 --data.num_workers 0 --trainer.precision 32-true)
  MAX_LIMIT=8
else
  DEVICE=cuda ACCEL=gpu
  BENCH=(--devices '[cuda]' --repeats 5 --warmup 1 --dlib false --num_workers 8)
  DCGAN_SIZE=(--data.num_workers 8 --data.cache_workers 8)
  SEARCH_SETTINGS='candidates: 64, iterations: 1000' SEARCH=()
  ENCODER_SIZE=(--data.num_workers 8)
  SEARCH_MASKS=(center left right)
  CURVES_RANDOM=(--candidates 64 --subsets 1 4 16 64 --snapshots 0 10 30 100 300 1000)
  CURVES_ENCODER=(--candidates 64 --subsets 1 4 16 64 --snapshots 0 10 30 100)  # <= 1/10 of 64 x 1000
  CURVES_REFERENCE=k64_t1000
  VAEGAN_SIZE=(--trainer.val_check_interval 100 --trainer.limit_val_batches 2 --data.num_workers 8
    --data.cache_workers 8)
  MAX_LIMIT=${GPU_CHECK_FACES:-256}
fi
if [[ -d $DATA/images ]]; then
  BENCH+=(--data_root "$DATA")  # else the bench's loader and landmark rows use the embedded faces
elif [[ $DRY_RUN == 1 ]] && { wanted dcgan || wanted search || wanted vaegan || wanted encoder; }; then
  DATA="$WORK/faces"  # no celeba-half here: embedded faces in its layout, the same code paths
  "$PYTHON" scripts/gpu_check.py fixture --out "$DATA" >>"$LOG" 2>&1
fi
echo "gpu-check: dry run $DRY_RUN, parts $PARTS, data $DATA, work $WORK, out $OUT_DIR" | tee -a "$LOG"

# --------------------------------------------------------------------------- 1. environment, tests
wanted env && part env "$(budget env 20)" "$PYTHON" scripts/gpu_check.py env --out "$WORK/env.jsonl"
wanted tests && part tests "$(budget tests 35)" "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider --continue-on-collection-errors \
  --junitxml "$WORK/tests.xml" tests

# --------------------------------------------------------------------------- 2. benchmarks, profile
if wanted bench; then
  part bench-search "$(budget bench_search 45)" "${FI[@]}" bench --out "$WORK/bench" --only '[peak, flops, search]' "${BENCH[@]}"
  part bench-vaegan "$(budget bench_vaegan 110)" "${FI[@]}" bench --out "$WORK/bench" --only '[peak, flops, vaegan]' "${BENCH[@]}"
  part bench-other "$(budget bench_other 45)" "${FI[@]}" bench --out "$WORK/bench" \
    --only '[peak, flops, dcgan, landmarks, data]' "${BENCH[@]}"
fi
wanted profile && part profile "$(budget profile 25)" "$PYTHON" scripts/gpu_check.py profile \
  --device "$DEVICE" --dry-run "$DRY_RUN" --out "$WORK/profile.jsonl"

# --------------------------------------------------------------------------- 3. quality runs
if [[ ! -d $DATA/images ]] && { wanted dcgan || wanted search || wanted vaegan || wanted encoder; }; then
  echo "gpu-check: no celeba-half at $DATA (make gpu-data): quality parts skipped" | tee -a "$LOG"
  for name in dcgan search encoder curves vaegan; do wanted $name && skip $name "no data at $DATA"; done
  PARTS=${PARTS//dcgan/} PARTS=${PARTS//search/} PARTS=${PARTS//encoder/} PARTS=${PARTS//curves/}
  PARTS=${PARTS//vaegan/}
fi
DCGAN_CKPT="$WORK/runs/dcgan/last.ckpt"
LANDMARK_ARGS=() EVAL_LANDMARK=() LANDMARK_SETTING=''
DCGAN_CONFIG=configs/dcgan/celeba-half-no-landmark.yaml  # the thesis config needs a landmark net
if [[ -f $LANDMARKS ]]; then
  DCGAN_CONFIG=configs/dcgan/celeba-half.yaml
  LANDMARK_ARGS=(--model.init_args.landmark_checkpoint "$LANDMARKS")
  EVAL_LANDMARK=(--landmark_checkpoint "$LANDMARKS") LANDMARK_SETTING=', landmark_weight: 1.0'
fi
if wanted dcgan; then
  seconds=$(budget dcgan 40)
  part dcgan $((seconds + 30)) "${FI[@]}" fit --config "$DCGAN_CONFIG" \
    --data.root "$DATA" --trainer.accelerator "$ACCEL" --trainer.max_epochs -1 \
    --trainer.max_time "$(hms "$seconds")" --trainer.logger lightning.pytorch.loggers.CSVLogger \
    --trainer.logger.init_args.save_dir "$WORK/runs" --trainer.logger.init_args.name dcgan \
    "${LANDMARK_ARGS[@]}" "${DCGAN_SIZE[@]}"
  found=$(find "$WORK/runs/dcgan" -name last.ckpt 2>/dev/null | head -1)
  [[ -n $found ]] && DCGAN_CKPT=$found
fi
if wanted search; then
  if [[ -f $DCGAN_CKPT ]]; then
    seconds=$(budget search 105)
    per_mask=$((seconds / ${#SEARCH_MASKS[@]}))
    for mask in "${SEARCH_MASKS[@]}"; do
      read -r limit batch < <("$PYTHON" scripts/gpu_check.py search-plan \
        --bench "$WORK/bench/bench.jsonl" --seconds "$per_mask" --most "$MAX_LIMIT")
      part "search-$mask" "$per_mask" "${FI[@]}" eval --config configs/eval/thesis.yaml \
        --data.root "$DATA" --protocol.masks "{$mask: ${MASK_SPECS[$mask]}}" \
        --dcgan "$DCGAN_CKPT" --limit "$limit" --batch_size "$batch" --device "$DEVICE" --out "$WORK/eval" \
        "${EVAL_LANDMARK[@]}" "${SEARCH[@]}" --overrides "{$SEARCH_SETTINGS$LANDMARK_SETTING}"
    done
  else
    skip search "no DCGAN checkpoint ($DCGAN_CKPT)"
  fi
fi
# ---- OPTIONAL: the encoder-initialised search (issue 13, item 2), once its code exists here.
encoder=${GPU_CHECK_ENCODER:-}
if wanted encoder; then
  encoder_config=$(ls configs/encoder/celeba-half.yaml configs/encoder/celeba-half*.yaml 2>/dev/null | head -1)
  if [[ -f faceinpaint/lit/encoder.py && -n $encoder_config && -f $DCGAN_CKPT ]] &&
    "${FI[@]}" eval --help 2>/dev/null | grep -q -- --overrides; then
    seconds=$(budget encoder 60)
    part encoder-fit $((seconds + 30)) "${FI[@]}" fit --config "$encoder_config" \
      --model.init_args.dcgan_checkpoint "$DCGAN_CKPT" --data.root "$DATA" \
      --trainer.accelerator "$ACCEL" --trainer.max_time "$(hms "$seconds")" \
      --trainer.logger lightning.pytorch.loggers.CSVLogger \
      --trainer.logger.init_args.save_dir "$WORK/runs" --trainer.logger.init_args.name encoder \
      "${ENCODER_SIZE[@]}"
    encoder=$(find "$WORK/runs/encoder" -name last.ckpt 2>/dev/null | head -1)
    if [[ -n $encoder ]]; then
      seconds=$(budget encoder_search 40)
      read -r limit batch < <("$PYTHON" scripts/gpu_check.py search-plan \
        --bench "$WORK/bench/bench.jsonl" --seconds "$seconds" --most "$MAX_LIMIT")
      part encoder-search "$seconds" "${FI[@]}" eval --config configs/eval/thesis.yaml \
        --data.root "$DATA" --protocol.masks '{center: {kind: center, side: 0.5}}' \
        --dcgan "$DCGAN_CKPT" --limit "$limit" --batch_size "$batch" --device "$DEVICE" \
        --out "$WORK/eval" "${SEARCH[@]}" --overrides "{$SEARCH_SETTINGS, encoder_checkpoint: $encoder}"
    fi
  else
    skip encoder "no encoder code / configs/encoder/celeba-half*.yaml / eval --overrides / DCGAN checkpoint"
  fi
fi
if wanted vaegan; then
  seconds=$(budget vaegan 30)
  if [[ $DRY_RUN != 1 ]]; then  # each stage a third of the run, from the bench's updates/s
    stages=${GPU_CHECK_VAEGAN_STAGES:-$("$PYTHON" scripts/gpu_check.py vaegan-plan \
      --bench "$WORK/bench/bench.jsonl" --seconds "$seconds")}
    VAEGAN_SIZE+=(--model.init_args.stage_boundaries "[$stages]")
  fi
  part vaegan $((seconds + 30)) "${FI[@]}" fit --config configs/vaegan/celeba-half.yaml \
    --data.root "$DATA" --trainer.accelerator "$ACCEL" --trainer.max_time "$(hms "$seconds")" \
    --model.init_args.vgg_weights random --model.init_args.landmark_checkpoint random \
    --trainer.logger lightning.pytorch.loggers.CSVLogger \
    --trainer.logger.init_args.save_dir "$WORK/runs" --trainer.logger.init_args.name vaegan \
    "${VAEGAN_SIZE[@]}"
fi

# ---- issue 13 item 2: random against encoder starts, the same faces and masks
if wanted curves; then
  # last before the report, in what is left of the whole run's deadline (at most its budget)
  seconds=$(budget curves 150)
  left=$((DEADLINE - SECONDS - $(budget report 30) - $(budget curves_plot 15)))
  ((left < seconds)) && seconds=$left
  if ((seconds < 30)); then
    skip curves "${left}s left before the ${DEADLINE}s deadline"
  elif [[ -n $encoder && -f $encoder && -f $DCGAN_CKPT ]]; then
    mkdir -p "$WORK/curves"
    # the random 64 x 1000 searches dominate: faces for two thirds of the budget over the masks
    read -r limit batch < <("$PYTHON" scripts/gpu_check.py search-plan --bench "$WORK/bench/bench.jsonl" \
      --seconds $((seconds * 2 / 3 / ${#SEARCH_MASKS[@]})) --most "$MAX_LIMIT")
    curves=("$PYTHON" scripts/search_curves.py --dcgan "$DCGAN_CKPT" --data_root "$DATA"
      --masks "${SEARCH_MASKS[@]}" --limit "$limit" --batch "$batch" --device "$DEVICE")
    # each writes its JSON after every batch of faces: a cut part keeps the faces it finished
    part curves-random $((seconds * 2 / 3)) "${curves[@]}" --start random "${CURVES_RANDOM[@]}" \
      --out "$WORK/curves/random.json"
    part curves-encoder $((seconds / 3)) "${curves[@]}" --start encoder --encoder "$encoder" \
      "${CURVES_ENCODER[@]}" --out "$WORK/curves/encoder.json"
    if [[ -f $WORK/curves/random.json && -f $WORK/curves/encoder.json ]]; then
      part curves-plot "$(budget curves_plot 15)" "$PYTHON" scripts/plot_search_curves.py \
        "$WORK/curves/random.json" "$WORK/curves/encoder.json" --reference "$CURVES_REFERENCE" \
        --out "$OUT_DIR/search-curves.png" --table "$OUT_DIR/search-curves.md"
      cp "$WORK/curves/random.json" "$OUT_DIR/search-curves-random.json"
      cp "$WORK/curves/encoder.json" "$OUT_DIR/search-curves-encoder.json"
    else
      skip curves-plot "a curves run wrote nothing"
    fi
  else
    skip curves "no encoder (the encoder part, or GPU_CHECK_ENCODER) or no DCGAN checkpoint"
  fi
fi

# --------------------------------------------------------------------------- 4. report
if wanted report; then
  part report "$(budget report 30)" "$PYTHON" scripts/gpu_check.py report --work "$WORK" \
    --out "$OUT_DIR" --dry-run "$DRY_RUN"
fi
cp "$LOG" "$OUT_DIR/gpu-check.log" 2>/dev/null
echo "gpu-check: done; $OUT_DIR: $(ls "$OUT_DIR" | tr '\n' ' ')"
}

main "$@"
