"""jiuzhang.sandbox: run untrusted, model-written Python in a separate, limited process."""
