"""jiuzhang.common."""
