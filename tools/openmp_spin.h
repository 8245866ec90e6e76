// The Debian oneDNN runs each primitive on an OpenMP team whose idle threads spin for a long while by
// default (about 300,000 iterations). Next to TBB's workers on a machine with few cores, spinning threads
// steal the cores the working ones need: the Keras autoencoder's step went from 2.3 ms to 42 ms under
// load. Fully passive waiting (OMP_WAIT_POLICY=passive) pays a futex wake-up per primitive instead
// (0.92 ms vs 0.67 ms at batch 256 on 2 threads). A short bounded spin keeps both costs small.
// libgomp reads these settings once, before main(), so a program must set them and re-execute itself.
#pragma once

namespace flowgrad {

// Unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set, sets GOMP_SPINCOUNT=3000 and re-executes the program
// with the same arguments; returns normally when nothing needs doing (or re-execution is impossible).
void bound_openmp_spinning(char** argv);

}  // namespace flowgrad
