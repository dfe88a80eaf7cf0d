"""What the tests share and pytest does not collect: gradient checks, the PyTorch oracle,
the CUDA emulator and kernel checks, the MPI worker programs, the repository's paths."""
