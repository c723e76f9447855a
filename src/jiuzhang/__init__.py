"""jiuzhang."""
