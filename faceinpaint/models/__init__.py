"""faceinpaint.models"""
