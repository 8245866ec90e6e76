// Baldi & Hornik: a linear autoencoder trained with MSE learns the principal subspace, so zoo/linear.yaml's
// test MSE must approach the rank-32 PCA reconstruction error of the same data. The PCA figure is computed
// here: the covariance of the training images (centered by their mean), its top 32 eigenvectors by
// orthogonal iteration with a Rayleigh-Ritz step, and the test set's residual outside that subspace.
#include <catch2/catch.hpp>

#include "tools/checkpoint.h"
#include "tools/dataset.h"
#include "tools/runner.h"

#include <dnnl.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace flowgrad;

namespace {

constexpr int kRank = 32;

using Matrix = std::vector<double>;  // row-major

// Orthonormalizes the columns of q[rows, cols] in place (modified Gram-Schmidt, twice for stability).
void orthonormalize(Matrix& q, int rows, int cols) {
  for (int pass = 0; pass < 2; ++pass)
    for (int j = 0; j < cols; ++j) {
      for (int k = 0; k < j; ++k) {
        double dot = 0;
        for (int i = 0; i < rows; ++i) dot += q[i * cols + j] * q[i * cols + k];
        for (int i = 0; i < rows; ++i) q[i * cols + j] -= dot * q[i * cols + k];
      }
      double norm = 0;
      for (int i = 0; i < rows; ++i) norm += q[i * cols + j] * q[i * cols + j];
      norm = std::sqrt(norm);
      for (int i = 0; i < rows; ++i) q[i * cols + j] /= norm;
    }
}

// Eigenvalues and eigenvectors (columns of v) of a small symmetric matrix a[n, n] by cyclic Jacobi rotations.
void jacobi_eigen(Matrix a, int n, std::vector<double>& values, Matrix& v) {
  v.assign(static_cast<size_t>(n * n), 0);
  for (int i = 0; i < n; ++i) v[i * n + i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-22) break;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) {
        if (std::abs(a[p * n + q]) < 1e-300) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // rotate columns p and q, then rows
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq, a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk, a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq, v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  values.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) values[static_cast<size_t>(i)] = a[i * n + i];
}

// The test MSE per pixel of the best rank-`kRank` affine reconstruction fitted on the training set.
double pca_test_mse(const Dataset& train, const Dataset& test) {
  const int d = static_cast<int>(train.sample_numel());
  const int64_t n = train.count;
  std::vector<double> mean(static_cast<size_t>(d), 0);
  for (int64_t s = 0; s < n; ++s)
    for (int j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += train.samples[static_cast<size_t>(s * d + j)];
  for (double& m : mean) m /= static_cast<double>(n);
  std::vector<float> centered(train.samples.size());
  for (int64_t s = 0; s < n; ++s)
    for (int j = 0; j < d; ++j)
      centered[static_cast<size_t>(s * d + j)] = static_cast<float>(train.samples[static_cast<size_t>(s * d + j)] - mean[static_cast<size_t>(j)]);
  std::vector<float> gram(static_cast<size_t>(d * d));  // X^T X on oneDNN's sgemm
  REQUIRE(dnnl_sgemm('T', 'N', d, d, n, 1.0f, centered.data(), d, centered.data(), d, 0.0f, gram.data(), d) == dnnl_success);
  Matrix cov(gram.begin(), gram.end());

  // Orthogonal iteration on an oversampled block, then Rayleigh-Ritz to pick the top kRank directions.
  const int block = kRank + 16;
  Matrix q(static_cast<size_t>(d * block));
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(static_cast<double>(i) * 12.9898 + 1.0);
  orthonormalize(q, d, block);
  Matrix next(q.size());
  for (int iteration = 0; iteration < 60; ++iteration) {
    std::fill(next.begin(), next.end(), 0.0);
    for (int i = 0; i < d; ++i)
      for (int k = 0; k < d; ++k) {
        const double c = cov[static_cast<size_t>(i * d + k)];
        for (int j = 0; j < block; ++j) next[i * block + j] += c * q[k * block + j];
      }
    q.swap(next);
    orthonormalize(q, d, block);
  }
  Matrix cq(q.size(), 0), small(static_cast<size_t>(block * block), 0);
  for (int i = 0; i < d; ++i)
    for (int k = 0; k < d; ++k)
      for (int j = 0; j < block; ++j) cq[i * block + j] += cov[static_cast<size_t>(i * d + k)] * q[k * block + j];
  for (int a = 0; a < block; ++a)
    for (int b = 0; b < block; ++b)
      for (int i = 0; i < d; ++i) small[a * block + b] += q[i * block + a] * cq[i * block + b];
  std::vector<double> values;
  Matrix vectors;
  jacobi_eigen(small, block, values, vectors);
  std::vector<int> order(static_cast<size_t>(block));
  for (int i = 0; i < block; ++i) order[static_cast<size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return values[static_cast<size_t>(a)] > values[static_cast<size_t>(b)]; });
  Matrix basis(static_cast<size_t>(d * kRank), 0);  // the top kRank Ritz vectors, as columns
  for (int r = 0; r < kRank; ++r)
    for (int i = 0; i < d; ++i)
      for (int b = 0; b < block; ++b) basis[i * kRank + r] += q[i * block + b] * vectors[b * block + order[static_cast<size_t>(r)]];

  // Residual energy of the centered test set outside the subspace.
  double residual = 0;
  std::vector<double> x(static_cast<size_t>(d)), coefficients(kRank);
  for (int64_t s = 0; s < test.count; ++s) {
    double energy = 0;
    for (int j = 0; j < d; ++j) {
      x[static_cast<size_t>(j)] = test.samples[static_cast<size_t>(s * d + j)] - mean[static_cast<size_t>(j)];
      energy += x[static_cast<size_t>(j)] * x[static_cast<size_t>(j)];
    }
    std::fill(coefficients.begin(), coefficients.end(), 0.0);
    for (int j = 0; j < d; ++j)
      for (int r = 0; r < kRank; ++r) coefficients[static_cast<size_t>(r)] += basis[j * kRank + r] * x[static_cast<size_t>(j)];
    double kept = 0;
    for (double c : coefficients) kept += c * c;
    residual += energy - kept;
  }
  return residual / static_cast<double>(test.count * d);
}

double last_test_loss(const std::string& metrics_path) {
  std::ifstream in(metrics_path);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  std::vector<std::string> cells;
  std::stringstream row(last);
  for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
  REQUIRE(cells.size() >= 4);
  return std::stod(cells[3]);
}

}  // namespace

TEST_CASE("zoo/linear.yaml learns the principal subspace: test MSE within 2% of PCA-32", "[zoo][pca]") {
  const std::string dir = default_fashion_mnist_dir();
  if (!std::filesystem::exists(dir)) {
    WARN("Fashion-MNIST is not installed at " << dir << " (Debian package dataset-fashion-mnist); skipped");
    return;
  }
  DatasetSplits data = load_idx_directory(dir);
  const double pca = pca_test_mse(data.train, data.test);
  INFO("PCA-32 test MSE " << pca);
  CHECK(pca == Approx(0.01514).epsilon(0.01));  // the published figure for Fashion-MNIST

  const std::string out = (std::filesystem::temp_directory_path() / "flowgrad_linear_pca").string();
  std::filesystem::remove_all(out);
  Spec spec = load_spec(FLOWGRAD_SOURCE_DIR "/zoo/linear.yaml");
  train_spec(spec, read_train_config(spec), {.out = out, .terminal = false});
  const double linear = last_test_loss(out + "/metrics.csv");
  std::filesystem::remove_all(out);
  INFO("linear autoencoder test MSE " << linear << " = " << linear / pca << " x PCA");
  CHECK(linear <= 1.02 * pca);
  CHECK(linear >= 0.99 * pca);  // below the optimum would mean the comparison is wrong
}
