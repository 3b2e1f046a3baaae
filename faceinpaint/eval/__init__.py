"""faceinpaint.eval"""
