"""minigrad's tests: one folder per package folder (tests/nn for minigrad/nn, tests/kernels
for kernels/, ...), tests of minigrad's single-file modules here, helpers in tests/helpers.

A package, so test files of the same name in two folders do not clash, and every test
imports its helpers one way: ``from tests.helpers.gradcheck import check_gradients``."""
