"""faceinpaint.lit"""
