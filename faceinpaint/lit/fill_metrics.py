"""The classical fills scored beside a module under ``test``: a callback, not the module's job.

:class:`ClassicalFillMetrics` fills each test batch's holes with the named classical fills
(``faceinpaint.ops.fills.BASELINES``) and logs their PSNR / SSIM (whole and hole) as
``test/<fill>/<metric>`` at the end of the test epoch, on the same images and masks as the
module's own ``test/<metric>``. The DCGAN adds one for its ``baselines`` setting; any module's
config can list one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch

from faceinpaint.batch import IMAGE, MASK
from faceinpaint.metrics import DefaultMetrics
from faceinpaint.ops.fills import BASELINES, check_fill_names


class ClassicalFillMetrics(pl.Callback):
    """Logs ``test/<fill>/<metric>`` for each classical fill in ``fills``."""

    def __init__(self, fills: Sequence[str]) -> None:
        check_fill_names(fills)
        self.metrics = torch.nn.ModuleDict({name: DefaultMetrics() for name in fills})

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: dict[str, torch.Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        image, mask = batch[IMAGE], batch[MASK]  # (B,3,H,W) in [-1, 1], (B,1,H,W) 1 = hole
        self.metrics.to(image.device)
        damaged = image * (1.0 - mask)
        with torch.no_grad():
            for name, metric in self.metrics.items():
                metric.update(BASELINES[name](damaged, mask), image, mask)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for name, metric in self.metrics.items():
            pl_module.log_dict({f"test/{name}/{k}": v for k, v in metric.compute().items()})
            metric.reset()
