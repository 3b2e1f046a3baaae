"""faceinpaint.losses"""
