// The Debian oneDNN runs each primitive on an OpenMP team whose idle threads spin by default. Next to
// TBB's workers on a machine with few cores, spinning threads steal the cores the working ones need
// (measured: the Keras autoencoder's step went from 2.3 ms to 42 ms under load). libgomp reads its wait
// policy once, before main(), so a program that wants the passive policy must set it and re-execute itself.
#pragma once

namespace flowgrad {

// Unless OMP_WAIT_POLICY is already set, sets it to "passive" and re-executes the program with the same
// arguments; returns normally when nothing needs doing (or re-execution is impossible).
void use_passive_openmp(char** argv);

}  // namespace flowgrad
