"""jiuzhang.kd."""
