"""Where inputs and labels come from: the dataset registry (digits, MNIST, image folders) and its split."""
