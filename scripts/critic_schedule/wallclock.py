"""Measurement helper of docs/RESULTS.md (critic schedule) (not project code): logs the wall-clock
seconds since the start of fit on every batch (``train/elapsed_s``) and appends one JSON line per
validation with the VAE-GAN's counters and the val metrics. Used as
``--trainer.callbacks+='{"class_path": "fidelity_method_wallclock.WallClock",
"init_args": {"out": "val.jsonl"}}'`` with scripts/critic_schedule on PYTHONPATH."""

import json
import time

import lightning.pytorch as pl


class WallClock(pl.Callback):
    def __init__(self, out: str):
        self.out = out

    def on_train_start(self, trainer, module):
        self.start = time.monotonic()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        module.log("train/elapsed_s", time.monotonic() - self.start, on_step=True, on_epoch=False)

    def on_validation_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        row = {
            "elapsed_s": time.monotonic() - self.start,
            "batches": trainer.fit_loop.epoch_loop._batches_that_stepped,
            "generator_updates": module.generator_updates,
            "critic_updates": getattr(module, "critic_updates", None),
            **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
        }
        with open(self.out, "a") as f:
            f.write(json.dumps(row) + "\n")
