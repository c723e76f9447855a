"""jiuzhang.evaluation: benchmark prompts, answer extraction, grading, the tool loop, the eval and report stages."""
