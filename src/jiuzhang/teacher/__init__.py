"""jiuzhang.teacher."""
