"""Training loops shared by the stages that train models."""
