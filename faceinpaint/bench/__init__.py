"""``faceinpaint bench``: throughput of both methods, each optimisation against its naive form.

One module per benchmark, all timed through :mod:`faceinpaint.bench.timing` (device syncs,
interleaved variants, min / median / max, ratios paired by round):

- ``vaegan``: training images/s per curriculum stage and batch size (fp32 vs bf16 vs compiled),
  and the paper curriculum's minutes extrapolated from them;
- ``dcgan``: DCGAN training images/s at 64 px;
- ``search``: latent-search ms/iteration and images/s at 1000 iterations, B images searched
  together, without / with the landmark network / with dlib in the loop, and their ratios;
- ``landmarks``: ms per face, dlib on the CPU vs the landmark network;
- ``data``: loader + on-device ``prepare_batch`` images/s against training's consumption;
- ``photo``: seconds per photo of ``faceinpaint inpaint`` with the VAE-GAN, after start-up;
- ``peak``: the device's dense-matmul peak per precision, measured before and after the timed
  rows (the roofline);
- ``flops``: FLOPs per training update and per search iteration; the achieved FLOP/s of every
  timed row as a share of the measured peak (MFU), and the GPU hours of a paper run.

The entry point is :func:`faceinpaint.bench.suite.bench`. This package's ``__init__`` imports
nothing, so ``faceinpaint.bench.timing`` stays light for the modules that time with it.
"""
