"""The oracle daemon: each interval, read the chain's terms and the order book, build the
inputs, clear (ahead, in a worker process), settle, index; resume from chain state.
"""
