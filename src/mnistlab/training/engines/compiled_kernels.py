"""numba kernels of the compiled engine: a chunk of dense-MLP training steps in one call.

`train_steps` runs thousands of steps without returning to Python: for each batch the
forward pass (batch normalisation included), softmax cross-entropy (or MSE/MAE), the
backward pass, L1/L2, clipping, the Keras update of one optimiser, the per-tensor gradient
norms of the learning-speed probe, the batch's loss and correct count, and the divergence
check. Everything is float32 (the
per-step scalars of the update rules are computed in float64 and rounded, as the torch
engines pass Python floats to float32 kernels).

The network lives in flat buffers: `params` holds the torch model's tensors in its
parameter order (kernel 0, row-major, see the layout note at the layers; bias 0; gamma 0
and beta 0 where the layer is batch-normalised; kernel 1, ...), `bounds` delimits them and
`layout` says where each layer's tensors are; `grads` is laid out alike and the
optimiser's slots are rows of `slots`, (3, P). What the torch engines draw from the
run's dropout generator comes in as `draws`, one float per masked unit, consumed in the
order the torch forward pass draws them (input, then after each Dense layer, row-major).

No inner loop starts anywhere but 0: numba's negative-index wraparound on a runtime start
keeps LLVM from vectorising it (8x slower updates, measured); tensors go in as views.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

FASTMATH = {"contract", "reassoc", "nsz"}  # never nnan/ninf: the divergence check needs them
# IEEE division (x/0 is inf or NaN, as in torch) instead of numba's default ZeroDivisionError
# check, which also kept LLVM from vectorising every loop that divides (Adam's update 8x)
ERRORS = "numpy"
F32 = np.float32
ZERO, ONE, HALF = F32(0.0), F32(1.0), F32(0.5)

# activations (hidden layers)
LINEAR, SIGMOID, TANH, RELU, LEAKY_RELU, ELU = 0, 1, 2, 3, 4, 5
ACTIVATION_CODES = {
    "linear": LINEAR,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
}

# batch normalisation of the hidden layers: none, before or after the activation
NO_NORM, NORM_BEFORE, NORM_AFTER = 0, 1, 2
NORM_CODES = {"none": NO_NORM, "before": NORM_BEFORE, "after": NORM_AFTER}

# losses, all from the logits
CROSS_ENTROPY, MSE, MAE = 0, 1, 2

# optimisers; each uses rows of `slots` in the order of its `OPTIMIZERS[name].state`
SGD, ADAM, NADAM, RMSPROP, ADAGRAD, ADADELTA = 0, 1, 2, 3, 4, 5
SLOTS = 3

# `hyper`: the optimiser's hyperparameters (float64), by index
MOMENTUM, NESTEROV, BETA_1, BETA_2, EPSILON, RHO = 0, 1, 2, 3, 4, 5
CENTERED, LEGACY, AMSGRAD, WEIGHT_DECAY = 6, 7, 8, 9
HYPER = 10

# `clip`: clipnorm, clipvalue, global_clipnorm (0 = off)
CLIPNORM, CLIPVALUE, GLOBAL_CLIPNORM = 0, 1, 2

# `counters` (int64): optimiser iterations; `scalars` (float64): Nadam's momentum product
ITERATIONS = 0
U_PRODUCT = 0


# --- layers ---
# A kernel is stored (in, out) ("natural", Keras's layout) or (out, in) ("transposed"),
# whichever makes its longer side contiguous: every inner loop runs along that side.


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _forward_natural(h, nb, w, b, z):
    """z[:nb] = h[:nb] @ w + b for w of shape (in, out), rows in pairs (one read of w)."""
    for r in range(nb):
        for j in range(w.shape[1]):
            z[r, j] = b[j]
    _add_product(h, nb, w, z)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _add_product(h, nb, w, z):
    """z[:nb] += h[:nb] @ w, rows of h in pairs so that each row of w is read once a pair."""
    n_in, n_out = w.shape
    for r in range(0, nb - 1, 2):
        for k in range(n_in):
            u, v = h[r, k], h[r + 1, k]
            for j in range(n_out):
                z[r, j] += u * w[k, j]
                z[r + 1, j] += v * w[k, j]
    if nb % 2:
        r = nb - 1
        for k in range(n_in):
            u = h[r, k]
            for j in range(n_out):
                z[r, j] += u * w[k, j]


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _backward_natural(h, delta, nb, w, gw, gb, previous, need_previous):
    """gw = h[:nb]ᵀ·δ (in, out), gb = Σ δ; previous[:nb] = δ·wᵀ when `need_previous`."""
    _column_sums(delta, nb, gb)
    _outer_sum(h, delta, nb, gw)
    if need_previous:
        _row_dots(delta, nb, w, previous)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _column_sums(delta, nb, out):
    """out[j] = Σ_{r < nb} δ[r, j], rows in order."""
    for j in range(delta.shape[1]):
        out[j] = delta[0, j]
    for r in range(1, nb):
        for j in range(delta.shape[1]):
            out[j] += delta[r, j]


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _outer_sum(a, b, nb, out):
    """out[i, j] = Σ_{r < nb} a[r, i]·b[r, j]: an odd row first, then rows in pairs, so each
    pass over `out` adds two rows."""
    rows_a, cols = out.shape
    for i in range(rows_a):
        start = 0
        if nb % 2:
            u = a[0, i]
            for j in range(cols):
                out[i, j] = u * b[0, j]
            start = 1
        else:
            u, v = a[0, i], a[1, i]
            for j in range(cols):
                out[i, j] = u * b[0, j] + v * b[1, j]
            start = 2
        for r in range(start, nb - 1, 2):
            u, v = a[r, i], a[r + 1, i]
            for j in range(cols):
                out[i, j] += u * b[r, j] + v * b[r + 1, j]


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _row_dots(v, nb, m, out):
    """out[r, i] = v[r] · m[i] for r < nb and every row i of m, rows of v in pairs."""
    for r in range(0, nb - 1, 2):
        _pair_dots(v[r], v[r + 1], m, out[r], out[r + 1])
    if nb % 2:  # the odd row as a pair with itself: the same sums twice
        _pair_dots(v[nb - 1], v[nb - 1], m, out[nb - 1], out[nb - 1])


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _pair_dots(x, y, m, out_x, out_y):
    """out_x[i] = x · m[i], out_y[i] = y · m[i]: four rows of m at a time, eight independent
    sums, each row of m read once for both."""
    rows, n = m.shape
    quads = rows - rows % 4
    for i in range(0, quads, 4):
        s0, s1, s2, s3 = ZERO, ZERO, ZERO, ZERO
        t0, t1, t2, t3 = ZERO, ZERO, ZERO, ZERO
        for k in range(n):
            a, b = x[k], y[k]
            s0 += a * m[i, k]
            s1 += a * m[i + 1, k]
            s2 += a * m[i + 2, k]
            s3 += a * m[i + 3, k]
            t0 += b * m[i, k]
            t1 += b * m[i + 1, k]
            t2 += b * m[i + 2, k]
            t3 += b * m[i + 3, k]
        out_x[i], out_x[i + 1], out_x[i + 2], out_x[i + 3] = s0, s1, s2, s3
        out_y[i], out_y[i + 1], out_y[i + 2], out_y[i + 3] = t0, t1, t2, t3
    for i in range(quads, rows):
        s, t = ZERO, ZERO
        for k in range(n):
            s += x[k] * m[i, k]
            t += y[k] * m[i, k]
        out_x[i], out_y[i] = s, t


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _forward_transposed(h, nb, w, b, z):
    """z[:nb] = h[:nb] @ wᵀ + b for w of shape (out, in)."""
    n_out = w.shape[0]
    _row_dots(h, nb, w, z)
    for r in range(nb):
        for j in range(n_out):
            z[r, j] += b[j]


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _backward_transposed(h, delta, nb, w, gw, gb, previous, need_previous):
    """gw = δᵀ·h[:nb] (out, in), gb = Σ δ; previous[:nb] = δ·w when `need_previous`."""
    _column_sums(delta, nb, gb)
    _outer_sum(delta, h, nb, gw)
    if need_previous:
        for r in range(nb):
            for k in range(w.shape[1]):
                previous[r, k] = ZERO
        _add_product(delta, nb, w, previous)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _activate(code, parameter, z, a, nb):
    """a[:nb] = f(z[:nb]) elementwise."""
    n = z.shape[1]
    if code == SIGMOID:
        for r in range(nb):
            for j in range(n):
                a[r, j] = ONE / (ONE + math.exp(-z[r, j]))
    elif code == TANH:
        for r in range(nb):
            for j in range(n):
                a[r, j] = math.tanh(z[r, j])
    elif code == RELU:
        for r in range(nb):
            for j in range(n):
                a[r, j] = ZERO if z[r, j] <= ZERO else z[r, j]  # NaN stays NaN, as torch
    elif code == LEAKY_RELU:
        for r in range(nb):
            for j in range(n):
                a[r, j] = z[r, j] if z[r, j] > ZERO else z[r, j] * parameter
    elif code == ELU:
        for r in range(nb):
            for j in range(n):
                a[r, j] = z[r, j] if z[r, j] > ZERO else parameter * math.expm1(z[r, j])
    else:
        a[:nb] = z[:nb]


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _activation_backward(code, parameter, delta, z, a, nb):
    """δ[:nb] ⊙= f′(z), with autograd's conventions at 0."""
    n = z.shape[1]
    if code == SIGMOID:
        for r in range(nb):
            for j in range(n):
                delta[r, j] = delta[r, j] * a[r, j] * (ONE - a[r, j])
    elif code == TANH:
        for r in range(nb):
            for j in range(n):
                delta[r, j] = delta[r, j] * (ONE - a[r, j] * a[r, j])
    elif code == RELU:
        for r in range(nb):
            for j in range(n):
                if z[r, j] <= ZERO:
                    delta[r, j] = ZERO
    elif code == LEAKY_RELU:
        for r in range(nb):
            for j in range(n):
                if not z[r, j] > ZERO:
                    delta[r, j] = delta[r, j] * parameter
    elif code == ELU:
        for r in range(nb):
            for j in range(n):
                if z[r, j] <= ZERO:
                    delta[r, j] = delta[r, j] * parameter * math.exp(z[r, j])


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _batch_norm(x, nb, gamma, beta, moving, momentum, epsilon, y, xhat, stats):
    """Keras's training-mode BatchNormalization of x[:nb] into y (the torch layer's order:
    y = x·scale + (β − mean·scale), scale = γ/sqrt(var + ε), var biased); xhat = the
    normalised x and stats[0] = 1/sqrt(var + ε) for the backward pass; moving (2, n), the
    moving mean and variance, updated as moving·momentum + batch·(1 − momentum)."""
    n = x.shape[1]
    mean, inverse = stats[1], stats[0]
    count = F32(nb)
    for j in range(n):
        mean[j] = x[0, j]
    for r in range(1, nb):
        for j in range(n):
            mean[j] += x[r, j]
    for j in range(n):
        mean[j] = mean[j] / count
        inverse[j] = ZERO
    for r in range(nb):
        for j in range(n):
            d = x[r, j] - mean[j]
            inverse[j] += d * d
    keep, share = F32(momentum), F32(1.0 - momentum)
    for j in range(n):
        variance = inverse[j] / count
        moving[0, j] = moving[0, j] * keep + mean[j] * share
        moving[1, j] = moving[1, j] * keep + variance * share
        inverse[j] = ONE / math.sqrt(variance + F32(epsilon))
    for r in range(nb):
        for j in range(n):
            scale = inverse[j] * gamma[j]
            y[r, j] = x[r, j] * scale + (beta[j] - mean[j] * scale)
            xhat[r, j] = (x[r, j] - mean[j]) * inverse[j]


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _batch_norm_backward(delta, xhat, nb, gamma, inverse, g_gamma, g_beta):
    """δ[:nb] ← ∂L/∂x from ∂L/∂y in place; g_beta = Σ δ, g_gamma = Σ δ·xhat."""
    n = delta.shape[1]
    for j in range(n):
        g_beta[j] = delta[0, j]
        g_gamma[j] = delta[0, j] * xhat[0, j]
    for r in range(1, nb):
        for j in range(n):
            g_beta[j] += delta[r, j]
            g_gamma[j] += delta[r, j] * xhat[r, j]
    count = F32(nb)
    for r in range(nb):
        for j in range(n):
            centred = delta[r, j] - g_beta[j] / count - xhat[r, j] * g_gamma[j] / count
            delta[r, j] = gamma[j] * inverse[j] * centred


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _dropout(a, h, mask, nb, keep, draws, position):
    """h[:nb] = a[:nb] ⊙ mask with mask = (draw < keep)/keep; returns the next draw position."""
    scale = ONE / keep
    n = a.shape[1]
    for r in range(nb):
        row = draws[position : position + n]
        for j in range(n):
            m = scale if row[j] < keep else ZERO
            mask[r, j] = m
            h[r, j] = a[r, j] * m
        position += n
    return position


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _dropout_rows(x, rows, start, nb, h, keep, draws, position):
    """h[:nb] = the batch's rows of x under input dropout; returns the next draw position."""
    scale = ONE / keep
    n = x.shape[1]
    for r in range(nb):
        source, row = x[rows[start + r]], draws[position : position + n]
        for j in range(n):
            h[r, j] = source[j] * (scale if row[j] < keep else ZERO)
        position += n
    return position


# --- losses ---


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _cross_entropy(logits, labels, rows, start, nb, delta):
    """Mean softmax cross-entropy of the batch and its correct count; δ = (softmax − 1ᵧ)/nb."""
    n_out = logits.shape[1]
    total = ZERO
    correct = 0
    inverse = ONE / F32(nb)
    for r in range(nb):
        label = labels[rows[start + r]]
        top = logits[r, 0]
        best = 0
        for j in range(1, n_out):  # torch's argmax: the first maximum; NaN beats everything
            v = logits[r, j]
            if math.isnan(top):
                break
            if v > top or math.isnan(v):
                top, best = v, j
        if best == label:
            correct += 1
        peak = logits[r, 0]
        for j in range(1, n_out):
            peak = max(peak, logits[r, j])
        s = ZERO
        for j in range(n_out):
            s += math.exp(logits[r, j] - peak)
        log_sum = math.log(s)
        total -= logits[r, label] - peak - log_sum
        for j in range(n_out):
            p = math.exp(logits[r, j] - peak - log_sum)
            delta[r, j] = (p - ONE if j == label else p) * inverse
    return total * inverse, correct


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _regression(outputs, targets, rows, start, nb, delta, kind):
    """Mean over the batch of the per-sample mean squared (MSE) or absolute (MAE) error; δ."""
    n_out = outputs.shape[1]
    total = ZERO
    scale = ONE / F32(n_out * nb)
    for r in range(nb):
        row = rows[start + r]
        sample = ZERO
        for j in range(n_out):
            e = outputs[r, j] - targets[row, j]
            if kind == MSE:
                sample += e * e
                delta[r, j] = F32(2.0) * e * scale
            else:
                sample += abs(e)
                delta[r, j] = (ONE if e > ZERO else (-ONE if e < ZERO else ZERO)) * scale
        total += sample / F32(n_out)
    return total / F32(nb)


# --- the update ---


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _penalties(params, grads, bounds, l1, l2, add_gradient):
    """Σ l1·Σ|w| + l2·Σw² over the tensors; with `add_gradient` also g += l1·sign(w) + 2·l2·w."""
    total = 0.0
    for t in range(len(l1)):
        a, c = F32(l1[t]), F32(l2[t])
        if a == ZERO and c == ZERO:
            continue
        absolute, square = 0.0, 0.0
        weights, gradient = params[bounds[t] : bounds[t + 1]], grads[bounds[t] : bounds[t + 1]]
        for i in range(len(weights)):
            w = weights[i]
            absolute += abs(w)
            square += w * w
            if add_gradient:
                sign = ONE if w > ZERO else (-ONE if w < ZERO else ZERO)
                gradient[i] = gradient[i] + a * sign + F32(2.0) * c * w
        total += float(a) * absolute + float(c) * square
    return total


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _norms(grads, bounds, out):
    """out[t] = the L2 norm of gradient tensor t (float64)."""
    for t in range(len(bounds) - 1):
        gradient = grads[bounds[t] : bounds[t + 1]]
        s = 0.0
        for i in range(len(gradient)):
            s += float(gradient[i]) * float(gradient[i])
        out[t] = math.sqrt(s)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _clip_scales(norms, clip, scales):
    """Per-tensor gradient scale of Keras's clipnorm / global_clipnorm (1 when off)."""
    scales[:] = 1.0
    if clip[CLIPNORM] > 0:
        c = clip[CLIPNORM]
        for t in range(len(norms)):
            scales[t] = c / max(norms[t], c)
    elif clip[GLOBAL_CLIPNORM] > 0:
        c = clip[GLOBAL_CLIPNORM]
        total = math.sqrt(np.sum(norms * norms))
        scale = c * min(1.0 / total, 1.0 / c) + (total - total)  # NaN when the norm is not finite
        scales[:] = scale


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _clipped(g, scale, limit):
    """Keras's clipnorm/global_clipnorm scale and clipvalue bound on one gradient element."""
    return min(max(g * scale, -limit), limit)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _sgd(w, g, velocity, lr, momentum, nesterov, scale, limit):
    """Keras SGD: v = μ·v − lr·g; w += v (Nesterov: w += μ·v − lr·g); no momentum: w −= lr·g."""
    for i in range(len(w)):
        gi = _clipped(g[i], scale, limit)
        if momentum == ZERO:
            w[i] = w[i] - lr * gi
        else:
            v = velocity[i] * momentum - gi * lr
            velocity[i] = v
            w[i] = w[i] + (v * momentum - gi * lr if nesterov else v)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _adam(w, g, m, v, v_max, alpha, c1, c2, epsilon, amsgrad, scale, limit):
    """Keras Adam: w −= α·m / (sqrt(v) + ε), α = lr·sqrt(1 − β2ᵗ)/(1 − β1ᵗ); AMSGrad's max."""
    for i in range(len(w)):
        gi = _clipped(g[i], scale, limit)
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        m[i], v[i] = mi, vi
        if amsgrad:
            vi = max(v_max[i], vi)
            v_max[i] = vi
        w[i] = w[i] - alpha * mi / (math.sqrt(vi) + epsilon)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _nadam(w, g, m, v, lr, c1, c2, k_m, k_g, k_v, epsilon, scale, limit):
    """Keras Nadam: m̂ = k_m·m + k_g·g, v̂ = k_v·v, w −= lr·m̂ / (sqrt(v̂) + ε)."""
    for i in range(len(w)):
        gi = _clipped(g[i], scale, limit)
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        m[i], v[i] = mi, vi
        w[i] = w[i] - (k_m * mi + k_g * gi) * lr / (math.sqrt(vi * k_v) + epsilon)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _rmsprop(w, g, ms, mom, mg, lr, rho, momentum, epsilon, centered, outside, scale, limit):
    """Keras RMSprop: ms = ρ·ms + (1−ρ)·g²; inc = lr·g/sqrt(ms − mg² + ε) (`outside`: ε out)."""
    keep = ONE - rho
    for i in range(len(w)):
        gi = _clipped(g[i], scale, limit)
        msi = ms[i] * rho + gi * gi * keep
        ms[i] = msi
        denominator = msi
        if centered:
            mgi = mg[i] * rho + gi * keep
            mg[i] = mgi
            denominator = msi - mgi * mgi
        if outside:
            increment = lr * gi / (math.sqrt(denominator) + epsilon)
        else:
            increment = lr * gi / math.sqrt(denominator + epsilon)
        if momentum == ZERO:
            w[i] = w[i] - increment
        else:
            mom[i] = mom[i] * momentum + increment
            w[i] = w[i] - mom[i]


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _adagrad(w, g, acc, lr, epsilon, legacy, scale, limit):
    """Keras Adagrad: acc += g²; w −= lr·g / sqrt(acc + ε) (legacy: / (sqrt(acc) + ε))."""
    for i in range(len(w)):
        gi = _clipped(g[i], scale, limit)
        a = acc[i] + gi * gi
        acc[i] = a
        if legacy:
            w[i] = w[i] - lr * gi / (math.sqrt(a) + epsilon)
        else:
            w[i] = w[i] - lr * gi / math.sqrt(a + epsilon)


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _adadelta(w, g, acc_grad, acc_delta, lr, rho, epsilon, scale, limit):
    """Keras Adadelta: Δ = −sqrt(E[Δ²] + ε)·g / sqrt(E[g²] + ε); w += lr·Δ."""
    keep = ONE - rho
    for i in range(len(w)):
        gi = _clipped(g[i], scale, limit)
        ag = acc_grad[i] * rho + gi * gi * keep
        acc_grad[i] = ag
        d = -(math.sqrt(acc_delta[i] + epsilon) * gi) / math.sqrt(ag + epsilon)
        acc_delta[i] = acc_delta[i] * rho + d * d * keep
        w[i] = w[i] + lr * d


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def _update(optimizer, hyper, w, g, s0, s1, s2, lr, step, u_product, scale, limit):
    """One Keras update of the tensor w (views of the buffers, with its gradient and slots s0-s2)
    at iteration `step` (1 for the first) and rate `lr`."""
    lr32, sc, lim = F32(lr), F32(scale), F32(limit)
    decay = F32(hyper[WEIGHT_DECAY])
    if decay > ZERO:  # AdamW: the decoupled decay before the update, at the current rate
        for i in range(len(w)):
            w[i] = w[i] - w[i] * decay * lr32
    momentum, epsilon, rho = F32(hyper[MOMENTUM]), F32(hyper[EPSILON]), F32(hyper[RHO])
    b1, b2 = hyper[BETA_1], hyper[BETA_2]
    legacy = hyper[LEGACY] > 0
    if optimizer == SGD:
        _sgd(w, g, s0, lr32, momentum, hyper[NESTEROV] > 0, sc, lim)
    elif optimizer == ADAM:
        alpha = F32(lr * math.sqrt(1.0 - b2**step) / (1.0 - b1**step))
        c1, c2 = F32(1.0 - b1), F32(1.0 - b2)
        amsgrad = hyper[AMSGRAD] > 0
        _adam(w, g, s0, s1, s2, alpha, c1, c2, epsilon, amsgrad, sc, lim)
    elif optimizer == NADAM:
        u_t, u_next = nadam_momentum(step, b1, legacy), nadam_momentum(step + 1, b1, legacy)
        k_m = F32(u_next / (1.0 - u_product * u_next))
        k_g = F32((1.0 - u_t) / (1.0 - u_product))
        k_v = F32(1.0 / (1.0 - b2**step))
        c1, c2 = F32(1.0 - b1), F32(1.0 - b2)
        _nadam(w, g, s0, s1, lr32, c1, c2, k_m, k_g, k_v, epsilon, sc, lim)
    elif optimizer == RMSPROP:
        centered = hyper[CENTERED] > 0
        outside = legacy and momentum == ZERO
        _rmsprop(
            w, g, s0, s1, s2, lr32, rho, momentum, epsilon,
            centered, outside, sc, lim,
        )  # fmt: skip
    elif optimizer == ADAGRAD:
        _adagrad(w, g, s0, lr32, epsilon, legacy, sc, lim)
    else:
        _adadelta(w, g, s0, s1, lr32, rho, epsilon, sc, lim)


@njit(cache=True)
def nadam_momentum(step, beta_1, legacy):
    """Dozat's momentum schedule u_t = β1·(1 − ½·0.96^t) (legacy: 0.96^(0.004·t))."""
    return beta_1 * (1.0 - 0.5 * 0.96 ** ((0.004 if legacy else 1.0) * step))


# --- the chunk ---


@njit(cache=True, fastmath=FASTMATH, error_model=ERRORS)
def train_steps(data, batches, network, optimizer_state, run, out):
    """Train len(starts) − 1 steps in place; returns (steps done, first bad step or −1).

    The arguments are tuples: data (x, labels, targets); batches (rows, starts, lrs,
    draws); network (widths, transposed, activations, activation_parameters, keep, l1,
    l2, bounds, layout, norm); optimizer_state (params, grads, slots, optimizer, hyper,
    clip, counters, scalars); run (loss_kind, threshold, first_step, epoch_steps,
    check_every, first_iteration, probe_every); out (losses, correct, norm_sums).

    Parameters
    ----------
    x : float32 (N, D); labels : int64 (N,); targets : float32 (N, K) for MSE/MAE.
    rows, starts : step s reads rows[starts[s]:starts[s + 1]].
    lrs : float64, the learning rate of every step.
    draws : float32 uniform draws for every dropout mask of the chunk, in torch's order.
    widths : int64 (L + 1,) layer widths from the input; transposed : bool (L,), whether
        kernel l is stored (out, in) rather than (in, out); activations : int64 (L − 1,)
        codes of the hidden layers; activation_parameters : float32 (L − 1,) slope or α.
    keep : float32 (L + 1,), 1 − dropout rate on the input and after each Dense layer.
    l1, l2 : float64 (T,), the regulariser of each of the T tensors (0 = none).
    bounds : int64 (T + 1,), tensor t is params[bounds[t]:bounds[t + 1]].
    layout : int64 (L, 2), per layer the index of its kernel (its bias follows) and of its
        gamma (beta follows; −1: not normalised).
    norm : (NO_NORM, NORM_BEFORE or NORM_AFTER, momentum, epsilon, features, moving):
        features is int64 (L,), where each hidden layer's units start among all hidden
        units (features[L − 1]: their count); moving is float32 (2, features[L − 1]), the
        moving means and variances.
    params, grads : float32 (P,); slots : float32 (3, P), the optimiser's state.
    optimizer : code; hyper : float64 (HYPER,); clip : float64 (3,).
    counters : int64 (1,), optimiser iterations; scalars : float64 (1,), Nadam's u product.
    loss_kind : CROSS_ENTROPY, MSE or MAE; threshold : float32 divergence bound (inf: none).
    first_step, epoch_steps : where the chunk starts in its epoch, and the epoch's length;
        a bad loss stops training at the end of its group of `check_every` epoch steps.
    first_iteration, probe_every : the run's step count before the chunk; every
        `probe_every` run steps (0: never) each gradient tensor's norm is added to
        norm_sums (float64 (T,)), as a callback sampling every n steps would see it.
    losses : float32 (steps,), correct : int64 (steps,): written per step.
    """
    x, labels, targets = data
    rows, starts, lrs, draws = batches
    widths, transposed, activations, activation_parameters, keep, l1, l2 = network[:7]
    bounds, layout, (norm_order, norm_momentum, norm_epsilon, features, moving) = network[7:]
    params, grads, slots, optimizer, hyper, clip, counters, scalars = optimizer_state
    loss_kind, threshold, first_step, epoch_steps, check_every, first_iteration, probe_every = run
    losses, correct, norm_sums = out
    layers = len(widths) - 1
    tensors = len(bounds) - 1
    batch = 0
    for s in range(len(starts) - 1):
        batch = max(batch, starts[s + 1] - starts[s])
    total_width = 0
    for layer in range(layers + 1):
        total_width += widths[layer]
    # per layer: h (its input), z, a and the mask after it, (batch, width) blocks
    h_buf = np.zeros(batch * total_width, dtype=np.float32)
    z_buf = np.zeros(batch * total_width, dtype=np.float32)
    a_buf = np.zeros(batch * total_width, dtype=np.float32)
    m_buf = np.zeros(batch * total_width, dtype=np.float32)
    offsets = np.zeros(layers + 2, dtype=np.int64)
    for layer in range(layers + 1):
        offsets[layer + 1] = offsets[layer] + batch * widths[layer]
    # batch normalisation: its output y and normalised input per layer (as z), and per
    # hidden layer its 1/sqrt(var + ε) and mean (2, width), from `features` on
    normalised = norm_order != NO_NORM
    y_buf = np.zeros(batch * total_width if normalised else 0, dtype=np.float32)
    xhat_buf = np.zeros(batch * total_width if normalised else 0, dtype=np.float32)
    stats_buf = np.zeros((2, features[layers - 1] if normalised else 0), dtype=np.float32)
    widest = 0
    for layer in range(layers + 1):
        widest = max(widest, widths[layer])
    delta_a = np.zeros(batch * widest, dtype=np.float32)
    delta_b = np.zeros(batch * widest, dtype=np.float32)
    norms = np.zeros(tensors)
    scales = np.ones(tensors)
    regularized = np.any(l1 > 0) or np.any(l2 > 0)
    clipping = clip[CLIPNORM] > 0 or clip[GLOBAL_CLIPNORM] > 0
    limit = clip[CLIPVALUE] if clip[CLIPVALUE] > 0 else np.inf
    position = 0
    first_bad = -1
    done = 0
    for s in range(len(starts) - 1):
        start, nb = starts[s], starts[s + 1] - starts[s]
        d_in = widths[0]
        h0 = h_buf[offsets[0] : offsets[0] + batch * d_in].reshape((batch, d_in))
        if keep[0] < ONE:
            position = _dropout_rows(x, rows, start, nb, h0, keep[0], draws, position)
        else:
            for r in range(nb):
                source = x[rows[start + r]]
                for k in range(d_in):
                    h0[r, k] = source[k]
        # forward
        for layer in range(layers):
            n_in, n_out = widths[layer], widths[layer + 1]
            lo, hi = offsets[layer], offsets[layer] + batch * n_in
            h = h_buf[lo:hi].reshape((batch, n_in))
            lo, hi = offsets[layer + 1], offsets[layer + 1] + batch * n_out
            z = z_buf[lo:hi].reshape((batch, n_out))
            a = a_buf[lo:hi].reshape((batch, n_out))
            mask = m_buf[lo:hi].reshape((batch, n_out))
            out = h_buf[lo:hi].reshape((batch, n_out))
            k = layout[layer, 0]
            kernel, b = params[bounds[k] : bounds[k + 1]], params[bounds[k + 1] : bounds[k + 2]]
            if transposed[layer]:
                _forward_transposed(h, nb, kernel.reshape((n_out, n_in)), b, z)
            else:
                _forward_natural(h, nb, kernel.reshape((n_in, n_out)), b, z)
            code, parameter = LINEAR, ZERO  # the output layer: logits
            if layer < layers - 1:
                code, parameter = activations[layer], activation_parameters[layer]
            g = layout[layer, 1]
            if g < 0:
                _activate(code, parameter, z, a, nb)
                kept = a
            else:
                y = y_buf[lo:hi].reshape((batch, n_out))
                xhat = xhat_buf[lo:hi].reshape((batch, n_out))
                gamma = params[bounds[g] : bounds[g + 1]]
                beta = params[bounds[g + 1] : bounds[g + 2]]
                f = features[layer]
                running, stats = moving[:, f : f + n_out], stats_buf[:, f : f + n_out]
                source = z if norm_order == NORM_BEFORE else a
                if norm_order == NORM_AFTER:
                    _activate(code, parameter, z, a, nb)
                _batch_norm(
                    source, nb, gamma, beta, running, norm_momentum, norm_epsilon, y, xhat, stats
                )
                if norm_order == NORM_BEFORE:
                    _activate(code, parameter, y, a, nb)
                    kept = a
                else:
                    kept = y
            if keep[layer + 1] < ONE:
                position = _dropout(kept, out, mask, nb, keep[layer + 1], draws, position)
            else:
                out[:nb] = kept[:nb]
        # loss at the output (after output dropout), δ of the logits
        n_out = widths[layers]
        lo = offsets[layers]
        top = h_buf[lo : lo + batch * n_out].reshape((batch, n_out))
        delta = delta_a[: batch * n_out].reshape((batch, n_out))
        if loss_kind == CROSS_ENTROPY:
            loss, hits = _cross_entropy(top, labels, rows, start, nb, delta)
        else:
            loss, hits = _regression(top, targets, rows, start, nb, delta, loss_kind), 0
        # backward
        current, spare = delta_a, delta_b
        for layer in range(layers - 1, -1, -1):
            n_in, n_out = widths[layer], widths[layer + 1]
            delta = current[: batch * n_out].reshape((batch, n_out))
            previous = spare[: batch * n_in].reshape((batch, n_in))
            lo = offsets[layer + 1]
            if keep[layer + 1] < ONE:
                mask = m_buf[lo : lo + batch * n_out].reshape((batch, n_out))
                for r in range(nb):
                    for j in range(n_out):
                        delta[r, j] *= mask[r, j]
            if layer < layers - 1:
                z = z_buf[lo : lo + batch * n_out].reshape((batch, n_out))
                a = a_buf[lo : lo + batch * n_out].reshape((batch, n_out))
                code, parameter = activations[layer], activation_parameters[layer]
                g = layout[layer, 1]
                if g < 0:
                    _activation_backward(code, parameter, delta, z, a, nb)
                else:
                    y = y_buf[lo : lo + batch * n_out].reshape((batch, n_out))
                    xhat = xhat_buf[lo : lo + batch * n_out].reshape((batch, n_out))
                    gamma = params[bounds[g] : bounds[g + 1]]
                    g_gamma = grads[bounds[g] : bounds[g + 1]]
                    g_beta = grads[bounds[g + 1] : bounds[g + 2]]
                    f = features[layer]
                    inverse = stats_buf[0, f : f + n_out]
                    if norm_order == NORM_BEFORE:
                        _activation_backward(code, parameter, delta, y, a, nb)
                        _batch_norm_backward(delta, xhat, nb, gamma, inverse, g_gamma, g_beta)
                    else:
                        _batch_norm_backward(delta, xhat, nb, gamma, inverse, g_gamma, g_beta)
                        _activation_backward(code, parameter, delta, z, a, nb)
            lo = offsets[layer]
            h = h_buf[lo : lo + batch * n_in].reshape((batch, n_in))
            k = layout[layer, 0]
            kernel = params[bounds[k] : bounds[k + 1]]
            gradient = grads[bounds[k] : bounds[k + 1]]
            gb = grads[bounds[k + 1] : bounds[k + 2]]
            if transposed[layer]:
                shape = (n_out, n_in)
                w, gw = kernel.reshape(shape), gradient.reshape(shape)
                _backward_transposed(h, delta, nb, w, gw, gb, previous, layer > 0)
            else:
                shape = (n_in, n_out)
                w, gw = kernel.reshape(shape), gradient.reshape(shape)
                _backward_natural(h, delta, nb, w, gw, gb, previous, layer > 0)
            current, spare = spare, current
        if regularized:
            loss = F32(loss + _penalties(params, grads, bounds, l1, l2, True))
        losses[s] = loss
        correct[s] = hits
        # the update
        probe = probe_every > 0 and (first_iteration + s + 1) % probe_every == 0
        if probe or clipping:
            _norms(grads, bounds, norms)
            if probe:
                norm_sums += norms
            _clip_scales(norms, clip, scales)
        counters[ITERATIONS] += 1
        step = counters[ITERATIONS]
        if optimizer == NADAM:  # Keras multiplies in u_t once per step, before any update
            scalars[U_PRODUCT] *= nadam_momentum(step, hyper[BETA_1], hyper[LEGACY] > 0)
        for t in range(tensors):
            lo, hi = bounds[t], bounds[t + 1]
            _update(
                optimizer, hyper, params[lo:hi], grads[lo:hi], slots[0, lo:hi], slots[1, lo:hi],
                slots[2, lo:hi], lrs[s], step, scalars[U_PRODUCT], scales[t], limit,
            )  # fmt: skip
        done = s + 1
        # divergence: the first bad loss, reported at the end of its check group
        if first_bad < 0 and (not math.isfinite(loss) or abs(loss) > threshold):
            first_bad = first_step + s
        at = first_step + s + 1
        if first_bad >= 0 and (at % check_every == 0 or at == epoch_steps):
            break
    return done, first_bad
