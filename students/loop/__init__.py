"""What runs inside SB3's ``learn()``: the curriculum callback and its scores, evaluation, periodic callbacks,
vec envs, masked students, kickstarting, the algorithm table."""
