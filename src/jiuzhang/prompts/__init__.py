"""jiuzhang.prompts."""
