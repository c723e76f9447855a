"""jiuzhang.base."""
