"""Speed without changing a number: CUDA-graph batch loops, the dynamo bypass, the FLOP memo."""
