"""jiuzhang.influence."""
