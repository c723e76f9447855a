"""jiuzhang.synthesis: run a synthesizer over a prompt pool (sharded, resumable) and filter the result."""
