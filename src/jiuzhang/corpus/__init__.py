"""jiuzhang.corpus."""
