"""jiuzhang.tracking."""
