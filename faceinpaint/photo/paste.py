"""Pasting a filled frame back into the photo through a feathered seam.

The filled frame is warped back to the photo's full resolution and pasted over the hole only,
through a feathered mask: weight 1 in the hole, falling smoothly to 0 over ``feather`` photo
pixels outside it. Pixels farther than ``feather`` from the hole keep their exact values (in a
lossless output format such as PNG).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from faceinpaint.photo.align import transform_scale


def feather_weights(hole: np.ndarray, feather: float) -> np.ndarray:
    """(H,W) float32 paste weights: 1 in the hole, smoothstep down to 0 at ``feather`` pixels
    (Euclidean distance) outside it, 0 beyond."""
    if feather <= 0:
        return hole.astype(np.float32)
    distance = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip(1.0 - distance / feather, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def paste_back(
    photo: np.ndarray,
    filled_frame: np.ndarray,
    matrix: np.ndarray,
    hole: np.ndarray,
    feather: float,
) -> np.ndarray:
    """The photo with the filled frame warped back over the hole and its feathered seam.

    ``photo`` (H,W,3) uint8; ``filled_frame`` (S,S,3) float32 in [0, 255]; ``matrix`` (2,3)
    photo -> frame; ``hole`` (H,W) bool. Pixels with zero weight keep their exact values.
    """
    height, width = hole.shape
    rows, cols = np.nonzero(hole)
    margin = math.ceil(feather) + 1
    top, bottom = max(0, rows.min() - margin), min(height, rows.max() + margin + 1)
    left, right = max(0, cols.min() - margin), min(width, cols.max() + margin + 1)
    region = (slice(top, bottom), slice(left, right))
    # photo pixel (left + x, top + y) -> frame: the matrix with the region's offset folded in
    to_frame = matrix.copy()
    to_frame[:, 2] += matrix[:, :2] @ np.array([left, top], dtype=np.float64)
    upsampled = cv2.warpAffine(
        filled_frame,
        to_frame,
        (right - left, bottom - top),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    weight = feather_weights(hole[region], feather)[..., None]  # (h, w, 1)
    original = photo[region].astype(np.float32)
    blended = np.clip(np.rint(original + weight * (upsampled - original)), 0, 255).astype(np.uint8)
    result = photo.copy()
    result[region] = np.where(weight > 0, blended, photo[region])
    return result


def default_feather(matrix: np.ndarray) -> float:
    """Two frame pixels in photo pixels (at least 2): the seam spans the model's resolution."""
    return max(2.0, 2.0 / transform_scale(matrix))
