"""mnistlab: declarative, reproducible, fast neural-network experiments on MNIST-style data."""
