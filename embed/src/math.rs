//! The arithmetic of a transformer's forward pass on plain `f32` slices: matrix products through
//! `matrixmultiply` (runtime-dispatched AVX2/FMA kernels, a few seconds to compile where candle
//! took ten minutes here), and the element-wise functions written so the compiler vectorises
//! them (polynomial `exp` and `erf` instead of calls into libm).

/// Calls `$f(args)` compiled for AVX2 and FMA when the CPU has them (checked once, cached by
/// std), else as built for baseline x86-64 (SSE2): the elementwise passes (softmax, GELU) then
/// vectorise 8 floats at a time instead of 4. `$f` must be `#[inline(always)]`, so its body is
/// compiled inside the function that has the features. matrixmultiply picks its kernels the
/// same way.
macro_rules! wide {
    ($f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2<A, R>(f: impl FnOnce(A) -> R, a: A) -> R {
                    f(a)
                }
                // SAFETY: the CPU has AVX2 and FMA, checked just above.
                #[allow(unsafe_code)]
                return unsafe { with_avx2(|()| $f($($arg),*), ()) };
            }
        }
        $f($($arg),*)
    }};
}

/// A row-major matrix view into a slice: `rows × cols`, rows `stride` apart.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl<'a> View<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View {
            data,
            rows,
            cols,
            stride: cols,
        }
    }

    /// Columns `from..from + cols` of every row.
    pub fn columns(self, from: usize, cols: usize) -> View<'a> {
        assert!(from + cols <= self.cols, "columns out of range");
        View {
            data: &self.data[from..],
            rows: self.rows,
            cols,
            stride: self.stride,
        }
    }

    fn check(&self) {
        if self.rows > 0 {
            assert!(
                (self.rows - 1) * self.stride + self.cols <= self.data.len(),
                "matrix view past its slice"
            );
        }
    }
}

/// `c = a · bᵀ` (+ `c` if `accumulate`), `c` being `a.rows × b.rows` with rows `c_stride`
/// apart. `b` is stored as PyTorch stores a linear layer's weight (`out × in`), so no copy
/// transposes it.
pub fn matmul_transposed(a: View, b: View, c: &mut [f32], c_stride: usize, accumulate: bool) {
    assert_eq!(a.cols, b.cols, "inner dimensions differ");
    b.check();
    // bᵀ is k × n read with b's strides swapped.
    sgemm(a, (b.data, b.rows, 1, b.stride), c, c_stride, accumulate);
}

/// `c = a · b` for a row-major `b` (`a.cols × b.cols`): attention's weights times values.
pub fn matmul(a: View, b: View, c: &mut [f32], c_stride: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    b.check();
    sgemm(a, (b.data, b.cols, b.stride, 1), c, c_stride, false);
}

/// `c = a · B` (+ `c`), B being `a.cols × n` read from `data` at (row stride, column stride).
/// The callers have checked that B stays inside `data`.
fn sgemm(
    a: View,
    (b, n, b_row_stride, b_col_stride): (&[f32], usize, usize, usize),
    c: &mut [f32],
    c_stride: usize,
    accumulate: bool,
) {
    a.check();
    let (m, k) = (a.rows, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * c_stride + n <= c.len() && n <= c_stride,
        "output past its slice"
    );
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: `a.check()` keeps a's m rows of k inside its slice; the caller's `b.check()`
    // keeps B's k × n elements at its strides inside `b`; the assert above keeps c's m rows of
    // n at `c_stride` inside `c`, which is borrowed mutably and so aliases neither input.
    #[allow(unsafe_code)]
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.stride as isize,
            1,
            b.as_ptr(),
            b_row_stride as isize,
            b_col_stride as isize,
            beta,
            c.as_mut_ptr(),
            c_stride as isize,
            1,
        );
    }
}

/// Adds `bias` to every row of `x` (rows of `bias.len()`).
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// Layer normalisation of each row of `x` in place (with `residual` added first, if given).
pub fn layer_norm(x: &mut [f32], residual: Option<&[f32]>, weight: &[f32], bias: &[f32], eps: f32) {
    let n = weight.len();
    if let Some(r) = residual {
        for (v, r) in x.iter_mut().zip(r) {
            *v += r;
        }
    }
    for row in x.chunks_exact_mut(n) {
        let mean = row.iter().sum::<f32>() / n as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// Softmax of each row of `x` (rows of `n`), scaled by `scale` first. Each pass is a loop the
/// compiler vectorises: the max and the sum in lanes of 16 (a float sum in one accumulator
/// cannot be), the exponentials with no call in them.
pub fn softmax_rows(x: &mut [f32], n: usize, scale: f32) {
    wide!(softmax_rows_in(x, n, scale))
}

#[inline(always)]
fn softmax_rows_in(x: &mut [f32], n: usize, scale: f32) {
    const LANES: usize = 16;
    for row in x.chunks_exact_mut(n) {
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (m, v) in lanes.iter_mut().zip(chunk) {
                *m = m.max(*v);
            }
        }
        let max = chunks
            .remainder()
            .iter()
            .chain(&lanes)
            .fold(f32::NEG_INFINITY, |m, v| m.max(*v));
        for v in row.iter_mut() {
            *v = exp((*v - max) * scale);
        }
        let mut lanes = [0.0f32; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (s, v) in lanes.iter_mut().zip(chunk) {
                *s += v;
            }
        }
        let sum: f32 = chunks.remainder().iter().chain(&lanes).sum();
        let inv = 1.0 / sum;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// The activation a model's config names (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// BERT's exact GELU, x·Φ(x) with the error function.
    Gelu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Activation> {
        match name {
            "gelu" => Some(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    pub fn apply(self, x: &mut [f32]) {
        wide!(activate(self, x))
    }
}

#[inline(always)]
fn activate(activation: Activation, x: &mut [f32]) {
    {
        match activation {
            Activation::Gelu => {
                for v in x {
                    *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
                }
            }
            Activation::GeluTanh => {
                for v in x {
                    let u = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
                    // tanh(u) = 1 - 2 / (e^{2u} + 1)
                    let t = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
                    *v = 0.5 * *v * (1.0 + t);
                }
            }
            Activation::Relu => {
                for v in x {
                    *v = v.max(0.0);
                }
            }
        }
    }
}

/// e^x to within 2 ulp over the range that matters here (below -87 it is 0), by Cephes' method:
/// x = n·ln 2 + r, e^r by a degree-6 polynomial, 2^n put straight into the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Rounded to the nearest integer by adding and taking away 1.5·2²³, which leaves no bits
    // below the point (|x·log2 e| < 128 here): `round()` is a library call on baseline x86-64,
    // which kept the loops around it from vectorising (3 % of an embedding's time).
    const SHIFT: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    // ln 2 in two parts, so r keeps its precision.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ from n's bits in `shifted` (1.5·2²³ + n), with no float-to-int conversion: Rust's
    // saturating `as i32` kept this loop scalar.
    let biased = shifted
        .to_bits()
        .wrapping_sub(0x4B40_0000)
        .wrapping_add(127);
    e * f32::from_bits(biased << 23)
}

/// The error function, as Eigen and TensorFlow compute it: a rational polynomial on [-4, 4]
/// (erf is ±1 in f32 beyond).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_600_3e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_474e-2;
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (converges for the |x| ≤ 4 tested).
    fn erf_series(x: f64) -> f64 {
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_a_few_ulp() {
        for i in -8700..8800 {
            let x = i as f32 / 100.0;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                ((got - want) / want).abs() < 5e-7,
                "exp({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn erf_matches_its_series() {
        for i in -400..=400 {
            let x = i as f32 / 100.0;
            let want = erf_series(x as f64);
            let got = erf(x) as f64;
            assert!((got - want).abs() < 1e-6, "erf({x}) = {got}, want {want}");
        }
        assert_eq!(erf(9.0), 1.0);
        assert_eq!(erf(-9.0), -1.0);
    }

    #[test]
    fn products_match_the_definition() {
        // a: 2×3, w: 4×3 (out × in): a·wᵀ is 2×4.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let w = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let mut c = [0.0; 8];
        matmul_transposed(View::new(&a, 2, 3), View::new(&w, 4, 3), &mut c, 4, false);
        assert_eq!(c, [1.0, 2.0, 3.0, 6.0, 4.0, 5.0, 6.0, 15.0]);
        // a·b for b: 3×2.
        let b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut d = [0.0; 4];
        matmul(View::new(&a, 2, 3), View::new(&b, 3, 2), &mut d, 2);
        assert_eq!(d, [22.0, 28.0, 49.0, 64.0]);
        // A column slice (one attention head) of a wider matrix.
        let mut e = [0.0; 2];
        matmul_transposed(
            View::new(&a, 2, 3).columns(1, 1),
            View::new(&[2.0], 1, 1),
            &mut e,
            1,
            false,
        );
        assert_eq!(e, [4.0, 10.0]);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut x = [1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0];
        softmax_rows(&mut x, 3, 1.0);
        assert!((x[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((x[3] - 0.5).abs() < 1e-6 && x[5] < 1e-30);
    }
}
