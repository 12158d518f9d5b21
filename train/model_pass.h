// The forward/backward wiring of train/model.h's model, written once for any kernel backend B:
// every op is a kernels/ op called as op<B>, every buffer a Bufs<B> vector (std::vector on Cpu,
// device memory on Cuda). model.cpp instantiates it for Cpu, cuda_model.cpp for Cuda; the Cpu
// instantiation is the code the trainer has always run (same ops, same order, same bits).
// Internal to train/: include only from those two files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/dense.h"
#include "kernels/moe.h"
#include "train/model.h"

namespace moecast::train {
namespace wiring {

namespace k = moecast::kernels;

// Per backend: buffer types F (float), I (int32), D (double) with resize/size/data, and the
// few host-side steps of a pass. Specialised below for Cpu and in cuda_model.cpp for Cuda.
//   assign(I&, host vector)         copies host values in
//   copy_cols(ctx, src, ld, c0, w, t, dst, to_src)
//                                   column block [c0, c0 + w) of src (T, ld) into dst (T, w), or back
//   read(ctx, p, n, host)           n values of backend memory to the host (waits for them)
template <class B> struct Bufs;

template <> struct Bufs<k::Cpu> {
    using F = std::vector<float>;
    using I = std::vector<int32_t>;
    using D = std::vector<double>;
    static void assign(I& dst, const std::vector<int32_t>& src) { dst = src; }
    static void copy_cols(k::Context<k::Cpu>&, float* src, int64_t ld, int64_t c0, int64_t w, int64_t t, float* dst,
                          bool to_src) {
        for (int64_t r = 0; r < t; ++r) {
            float* a = src + r * ld + c0;
            float* b = dst + r * w;
            if (to_src)
                std::copy(b, b + w, a);
            else
                std::copy(a, a + w, b);
        }
    }
    template <class T> static void read(k::Context<k::Cpu>&, const T* p, int64_t n, T* out) {
        std::copy(p, p + n, out);
    }
};

// A layer's FFN: width F, first-GEMM width N1 (2F for GLU) and activation; an expert's for MoE.
struct FfnShape {
    int64_t f = 0, n1 = 0;
    k::Activation act = k::Activation::gelu;
};

inline FfnShape ffn_shape(const sim::ModelConfig& m, bool moe) {
    const int64_t f = moe ? m.moe.expert_ffn : m.ffn;
    const bool glu = (moe ? m.moe.expert_kind : m.ffn_kind) == sim::FfnKind::glu;
    return {f, glu ? 2 * f : f, glu ? k::Activation::swiglu : k::Activation::gelu};
}

inline size_t sz(int64_t n) { return static_cast<size_t>(n); }

template <class B> struct LayerActsT {
    using Vec = typename Bufs<B>::F;
    using IVec = typename Bufs<B>::I;
    Vec xn_attn, rstd_attn;            // (T, D), (T)
    Vec q_raw, k_raw, q_rstd, k_rstd;  // (T, HD), rstd per normalised row
    Vec q, k, v;                       // (T, HD) after QK-norm and rotation
    Vec probs;                         // (T/S, H, S, S)
    Vec att;                           // (T, HD)
    Vec xn_ffn, rstd_ffn;              // (T, D), (T)
    // MoE
    Vec logits, rprobs, weights;                       // (T, E), (T, E), (T, K)
    IVec idx, tpe, offsets, row_to_slot, slot_to_row;  // (T,K) (E) (E+1) (R) (R)
    Vec x_perm, h, a, y_perm;                          // (R, D) (R, N1) (R, F) (R, D); dense: h (T, N1), a (T, F)
};

template <class B> class WorkspaceT {
public:
    using Vec = typename Bufs<B>::F;
    int64_t t = 0;
    std::vector<Vec> resid;  // 2L + 1 residual snapshots (T, D)
    std::vector<LayerActsT<B>> layers;
    typename Bufs<B>::I pos_idx;  // (T) position of each row
    Vec xf, rstd_f, logits;       // (T, D), (T), (T, V)
    // Backward scratch, shared by layers.
    Vec d, dxn, tmp, qkv, dq, dk, dv, datt, dlogits_r, dprobs_aux, dweights, dy_perm, da, dh, dx_perm, dw_tmp;
    // One pass's scalar outputs in the backend's memory: the load-balancing and z-losses of the
    // layer being run (2) and the summed cross-entropy (1). Not activations: not in workspace_bytes.
    Vec aux_losses;
    typename Bufs<B>::D ce_sum;
};

// The activations one layer keeps for its backward, for a micro-batch of t tokens.
template <class B> LayerActsT<B> make_layer_acts(const sim::ModelConfig& m, bool moe, int64_t t) {
    const int64_t d = m.d_model, h = m.attention.heads, hdim = h * sim::head_dim(m), s = m.seq_len;
    LayerActsT<B> a;
    a.xn_attn.resize(sz(t * d));
    a.rstd_attn.resize(sz(t));
    a.q.resize(sz(t * hdim));
    a.k.resize(sz(t * hdim));
    a.v.resize(sz(t * hdim));
    if (m.attention.qk_norm != sim::QkNorm::none) {
        a.q_raw.resize(sz(t * hdim));
        a.k_raw.resize(sz(t * hdim));
        a.q_rstd.resize(sz(t * h));
        a.k_rstd.resize(sz(t * h));
    }
    a.probs.resize(sz(t / s * h * s * s));
    a.att.resize(sz(t * hdim));
    a.xn_ffn.resize(sz(t * d));
    a.rstd_ffn.resize(sz(t));
    const FfnShape fs = ffn_shape(m, moe);
    if (moe) {
        const int64_t e = m.moe.experts, kk = m.moe.top_k, r = t * kk;
        a.logits.resize(sz(t * e));
        a.rprobs.resize(sz(t * e));
        a.weights.resize(sz(t * kk));
        a.idx.resize(sz(t * kk));
        a.tpe.resize(sz(e));
        a.offsets.resize(sz(e + 1));
        a.row_to_slot.resize(sz(r));
        a.slot_to_row.resize(sz(r));
        a.x_perm.resize(sz(r * d));
        a.h.resize(sz(r * fs.n1));
        a.a.resize(sz(r * fs.f));
        a.y_perm.resize(sz(r * d));
    } else {
        a.h.resize(sz(t * fs.n1));
        a.a.resize(sz(t * fs.f));
    }
    return a;
}

// Sizes every buffer of ws for micro-batches of t tokens (t a multiple of seq_len).
template <class B> void init_workspace(const Model& model, int64_t t, WorkspaceT<B>* ws) {
    using Vec = typename Bufs<B>::F;
    const sim::ModelConfig& m = model.config();
    if (t % m.seq_len != 0) throw std::invalid_argument("micro-batch tokens must be a multiple of seq_len");
    ws->t = t;
    const int64_t d = m.d_model, hdim = m.attention.heads * sim::head_dim(m), s = m.seq_len;
    ws->resid.resize(sz(2 * m.layers + 1));
    for (Vec& r : ws->resid) r.resize(sz(t * d));
    // Backward scratch is shared by layers: sized by the largest layer (routed rows, FFN widths,
    // a weight gradient staged before it is added).
    int64_t max_w = d * m.vocab;
    int64_t max_r = t, max_n1 = 1, max_f = 1;
    for (int64_t l = 0; l < m.layers; ++l) {
        const bool moe = model.layout().layers[sz(l)].moe;
        ws->layers.push_back(make_layer_acts<B>(m, moe, t));
        const FfnShape fs = ffn_shape(m, moe);
        max_n1 = std::max(max_n1, fs.n1);
        max_f = std::max(max_f, fs.f);
        if (moe) {
            const int64_t e = m.moe.experts;
            max_r = std::max(max_r, t * m.moe.top_k);
            max_w = std::max({max_w, e * d * fs.n1, e * fs.f * d, d * e});
        }
    }
    std::vector<int32_t> pos(sz(t));
    for (int64_t i = 0; i < t; ++i) pos[sz(i)] = static_cast<int32_t>(i % s);
    Bufs<B>::assign(ws->pos_idx, pos);
    ws->xf.resize(sz(t * d));
    ws->rstd_f.resize(sz(t));
    ws->logits.resize(sz(t * m.vocab));
    for (Vec* v : {&ws->d, &ws->dxn, &ws->tmp}) v->resize(sz(t * d));
    ws->qkv.resize(sz(t * 3 * hdim));
    for (Vec* v : {&ws->dq, &ws->dk, &ws->dv, &ws->datt}) v->resize(sz(t * hdim));
    if (sim::is_moe(m)) {
        ws->dlogits_r.resize(sz(t * m.moe.experts));
        ws->dprobs_aux.resize(sz(t * m.moe.experts));
        ws->dweights.resize(sz(t * m.moe.top_k));
    }
    ws->dy_perm.resize(sz(max_r * d));
    ws->da.resize(sz(max_r * max_f));
    ws->dh.resize(sz(max_r * max_n1));
    ws->dx_perm.resize(sz(max_r * d));
    ws->dw_tmp.resize(sz(max_w));
    ws->aux_losses.resize(2);
    ws->ce_sum.resize(1);
}

// ---------------------------------------------------------------------------------------------
// One pass, block by block (as llm.c's train_gpt2.c: one forward and one backward per block).
// Each block reads its activations from the workspace and, in the backward, takes the gradient of
// the residual stream `dres` (T, D) of its output and leaves there the gradient of its input.

using SP = sim::StepPart;

// What every block of one micro-batch's pass reads. G is nullptr on a forward-only pass.
template <class B> struct Pass {
    k::Context<B>& ctx;
    WorkspaceT<B>& ws;
    const sim::ModelConfig& m;
    const ModelOptions& opt;
    const ParamLayout& L;
    const float* P;
    float* G;
    PartTimer* timer;
    int64_t t, d, h, hd, hdim, s;
    bool rope, qkn;
    int64_t qk_rows, qk_d;  // QK-norm rows and width: per head (T * H, hd) or full (T, HD)

    Pass(k::Context<B>& ctx_, WorkspaceT<B>& ws_, const sim::ModelConfig& m_, const ModelOptions& opt_,
         const ParamLayout& layout, const float* params, float* grads, PartTimer* timer_)
        : ctx(ctx_), ws(ws_), m(m_), opt(opt_), L(layout), P(params), G(grads), timer(timer_), t(ws_.t), d(m_.d_model),
          h(m_.attention.heads), hd(sim::head_dim(m_)), hdim(h * hd), s(m_.seq_len),
          rope(m_.positions == sim::PositionKind::rope), qkn(m_.attention.qk_norm != sim::QkNorm::none) {
        const bool qk_full = m.attention.qk_norm == sim::QkNorm::full;
        qk_rows = qk_full ? t : t * h;
        qk_d = qk_full ? hdim : hd;
    }
    // Charges this thread's CPU time from here on to step part `p` (train/part_timer.h).
    void part(SP p) const {
        if (timer) timer->start(p);
    }
};

// Token embedding (+ learned positions) into the first residual snapshot.
template <class B> void embed_forward(const Pass<B>& p, const int32_t* tokens) {
    p.part(SP::elementwise);
    k::embedding<B, float>(p.ctx, tokens, p.P + p.L.embedding, p.t, p.d, p.ws.resid[0].data());
    if (p.L.positions >= 0) {
        k::embedding<B, float>(p.ctx, p.ws.pos_idx.data(), p.P + p.L.positions, p.t, p.d, p.ws.tmp.data());
        k::add_to<B, float>(p.ctx, p.ws.resid[0].data(), p.ws.tmp.data(), p.t * p.d);
    }
}

template <class B> void embed_backward(const Pass<B>& p, const int32_t* tokens, const float* dres) {
    p.part(SP::elementwise);
    k::embedding_backward<B, float>(p.ctx, tokens, dres, p.t, p.d, p.G + p.L.embedding);
    if (p.L.positions >= 0)
        k::embedding_backward<B, float>(p.ctx, p.ws.pos_idx.data(), dres, p.t, p.d, p.G + p.L.positions);
}

// x_mid = x_in + attention(rmsnorm(x_in)).
template <class B>
void attention_forward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, const float* x_in, float* x_mid) {
    k::Context<B>& ctx = p.ctx;
    WorkspaceT<B>& ws = p.ws;
    const int64_t t = p.t, hdim = p.hdim;
    const double eps = p.opt.norm_eps, theta = p.opt.rope_theta;
    p.part(SP::elementwise);
    k::rmsnorm<B, float>(ctx, x_in, p.P + sl.attn_norm, t, p.d, eps, a.xn_attn.data(), a.rstd_attn.data());
    p.part(SP::dense_gemm);
    k::linear<B, float>(ctx, a.xn_attn.data(), p.P + sl.wqkv, t, p.d, 3 * hdim, false, ws.qkv.data());
    Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, 0, hdim, t, p.qkn ? a.q_raw.data() : a.q.data(), false);
    Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, hdim, hdim, t, p.qkn ? a.k_raw.data() : a.k.data(), false);
    Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, 2 * hdim, hdim, t, a.v.data(), false);
    p.part(SP::elementwise);
    if (p.qkn) {
        k::rmsnorm<B, float>(ctx, a.q_raw.data(), p.P + sl.q_norm, p.qk_rows, p.qk_d, eps, a.q.data(), a.q_rstd.data());
        k::rmsnorm<B, float>(ctx, a.k_raw.data(), p.P + sl.k_norm, p.qk_rows, p.qk_d, eps, a.k.data(), a.k_rstd.data());
    }
    if (p.rope) {
        k::rope<B, float>(ctx, a.q.data(), t, p.h, p.hd, p.s, theta, false);
        k::rope<B, float>(ctx, a.k.data(), t, p.h, p.hd, p.s, theta, false);
    }
    p.part(SP::attention);
    k::causal_attention<B, float>(ctx, a.q.data(), a.k.data(), a.v.data(), t, p.s, p.h, p.hd, a.probs.data(),
                                  a.att.data());
    p.part(SP::dense_gemm);
    k::linear<B, float>(ctx, a.att.data(), p.P + sl.wo, t, hdim, p.d, false, x_mid);
    p.part(SP::elementwise);
    k::add_to<B, float>(ctx, x_mid, x_in, t * p.d);
}

// dres: gradient of x_mid in, of x_in out.
template <class B>
void attention_backward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, const float* x_in, float* dres) {
    k::Context<B>& ctx = p.ctx;
    WorkspaceT<B>& ws = p.ws;
    const float* P = p.P;
    float* G = p.G;
    const int64_t t = p.t, hdim = p.hdim;
    p.part(SP::dense_gemm);
    k::linear_backward<B, float>(ctx, a.att.data(), P + sl.wo, dres, t, hdim, p.d, false, ws.datt.data(), G + sl.wo);
    p.part(SP::attention);
    k::causal_attention_backward<B, float>(ctx, a.q.data(), a.k.data(), a.v.data(), a.probs.data(), a.att.data(),
                                           ws.datt.data(), t, p.s, p.h, p.hd, ws.dq.data(), ws.dk.data(), ws.dv.data());
    p.part(SP::elementwise);
    if (p.rope) {
        k::rope<B, float>(ctx, ws.dq.data(), t, p.h, p.hd, p.s, p.opt.rope_theta, true);
        k::rope<B, float>(ctx, ws.dk.data(), t, p.h, p.hd, p.s, p.opt.rope_theta, true);
    }
    if (p.qkn) {
        // dq/dk hold gradients of the normalised q/k; write raw gradients into the qkv columns.
        k::rmsnorm_backward<B, float>(ctx, a.q_raw.data(), P + sl.q_norm, a.q_rstd.data(), ws.dq.data(), p.qk_rows,
                                      p.qk_d, ws.datt.data(), G + sl.q_norm);
        Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, 0, hdim, t, ws.datt.data(), true);
        k::rmsnorm_backward<B, float>(ctx, a.k_raw.data(), P + sl.k_norm, a.k_rstd.data(), ws.dk.data(), p.qk_rows,
                                      p.qk_d, ws.datt.data(), G + sl.k_norm);
        Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, hdim, hdim, t, ws.datt.data(), true);
    } else {
        Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, 0, hdim, t, ws.dq.data(), true);
        Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, hdim, hdim, t, ws.dk.data(), true);
    }
    Bufs<B>::copy_cols(ctx, ws.qkv.data(), 3 * hdim, 2 * hdim, hdim, t, ws.dv.data(), true);
    p.part(SP::dense_gemm);
    k::linear_backward<B, float>(ctx, a.xn_attn.data(), P + sl.wqkv, ws.qkv.data(), t, p.d, 3 * hdim, false,
                                 ws.dxn.data(), G + sl.wqkv);
    p.part(SP::elementwise);
    k::rmsnorm_backward<B, float>(ctx, x_in, P + sl.attn_norm, a.rstd_attn.data(), ws.dxn.data(), t, p.d, ws.tmp.data(),
                                  G + sl.attn_norm);
    k::add_to<B, float>(ctx, dres, ws.tmp.data(), t * p.d);
}

// x_out = MoE(xn_ffn): router (+ auxiliary losses into stats), dispatch, expert GEMMs, combine.
template <class B>
void moe_forward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, float* x_out, PassStats& stats) {
    k::Context<B>& ctx = p.ctx;
    const int64_t t = p.t, d = p.d, e = p.m.moe.experts, kk = p.m.moe.top_k;
    const FfnShape fs = ffn_shape(p.m, true);
    p.part(SP::router);
    k::router_logits<B, float>(ctx, a.xn_ffn.data(), p.P + sl.router, t, d, e, a.logits.data());
    k::router_softmax_topk<B>(ctx, a.logits.data(), t, e, kk, p.opt.router_renormalize, a.rprobs.data(), a.idx.data(),
                              a.weights.data());
    float* lbz = p.ws.aux_losses.data();  // (2) in the backend's memory
    k::load_balancing_loss<B>(ctx, a.rprobs.data(), a.idx.data(), t, e, kk, static_cast<float>(p.opt.load_balance_coef),
                              lbz);
    k::router_z_loss<B>(ctx, a.logits.data(), t, e, static_cast<float>(p.opt.z_loss_coef), lbz + 1);
    float lb_z[2];
    Bufs<B>::read(ctx, lbz, 2, lb_z);
    stats.aux_loss += static_cast<double>(lb_z[0]) + static_cast<double>(lb_z[1]);
    p.part(SP::dispatch);
    k::permute_plan<B>(ctx, a.idx.data(), t, e, kk, a.tpe.data(), a.offsets.data(), a.row_to_slot.data(),
                       a.slot_to_row.data());
    std::vector<int32_t> tpe(sz(e));
    Bufs<B>::read(ctx, a.tpe.data(), e, tpe.data());
    stats.tokens_per_expert.emplace_back(tpe.begin(), tpe.end());
    k::permute_gather<B, float>(ctx, a.xn_ffn.data(), a.row_to_slot.data(), t, kk, d, a.x_perm.data());
    p.part(SP::expert_gemm);
    k::grouped_gemm<B, float>(ctx, a.x_perm.data(), p.P + sl.w1, a.offsets.data(), e, d, fs.n1, a.h.data());
    k::activation<B, float>(ctx, fs.act, a.h.data(), t * kk, fs.f, a.a.data());
    k::grouped_gemm<B, float>(ctx, a.a.data(), p.P + sl.w2, a.offsets.data(), e, fs.f, d, a.y_perm.data());
    p.part(SP::combine);
    k::combine<B, float>(ctx, a.y_perm.data(), a.weights.data(), a.slot_to_row.data(), t, kk, d, x_out);
}

// dres: gradient of x_out; leaves the gradient of xn_ffn in ws.dxn. The router's gradient is the
// main loss's through the chosen weights plus the auxiliary losses' (scaled by aux_scale).
template <class B>
void moe_backward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, const float* dres, double aux_scale) {
    k::Context<B>& ctx = p.ctx;
    WorkspaceT<B>& ws = p.ws;
    const float* P = p.P;
    float* G = p.G;
    const int64_t t = p.t, d = p.d, e = p.m.moe.experts, kk = p.m.moe.top_k, r = t * kk;
    const FfnShape fs = ffn_shape(p.m, true);
    const int64_t f = fs.f, n1 = fs.n1;
    p.part(SP::combine);
    k::combine_backward<B, float>(ctx, dres, a.y_perm.data(), a.weights.data(), a.slot_to_row.data(), t, kk, d,
                                  ws.dy_perm.data(), ws.dweights.data());
    p.part(SP::expert_gemm);
    k::grouped_gemm_wgrad<B, float>(ctx, a.a.data(), ws.dy_perm.data(), a.offsets.data(), e, f, d, ws.dw_tmp.data());
    k::add_to<B, float>(ctx, G + sl.w2, ws.dw_tmp.data(), e * f * d);
    k::grouped_gemm_dgrad<B, float>(ctx, ws.dy_perm.data(), P + sl.w2, a.offsets.data(), e, f, d, ws.da.data());
    k::activation_backward<B, float>(ctx, fs.act, a.h.data(), ws.da.data(), r, f, ws.dh.data());
    k::grouped_gemm_wgrad<B, float>(ctx, a.x_perm.data(), ws.dh.data(), a.offsets.data(), e, d, n1, ws.dw_tmp.data());
    k::add_to<B, float>(ctx, G + sl.w1, ws.dw_tmp.data(), e * d * n1);
    k::grouped_gemm_dgrad<B, float>(ctx, ws.dh.data(), P + sl.w1, a.offsets.data(), e, d, n1, ws.dx_perm.data());
    p.part(SP::dispatch);
    k::permute_gather_backward<B, float>(ctx, ws.dx_perm.data(), a.slot_to_row.data(), t, kk, d, ws.dxn.data());
    p.part(SP::router);
    k::load_balancing_loss_backward<B>(ctx, a.idx.data(), t, e, kk,
                                       static_cast<float>(p.opt.load_balance_coef * aux_scale), ws.dprobs_aux.data());
    k::router_softmax_topk_backward<B>(ctx, a.rprobs.data(), a.idx.data(), ws.dweights.data(), ws.dprobs_aux.data(), t,
                                       e, kk, p.opt.router_renormalize, ws.dlogits_r.data());
    k::router_z_loss_backward<B>(ctx, a.logits.data(), t, e, static_cast<float>(p.opt.z_loss_coef * aux_scale),
                                 ws.dlogits_r.data());
    k::router_logits_backward<B, float>(ctx, a.xn_ffn.data(), P + sl.router, ws.dlogits_r.data(), t, d, e,
                                        ws.tmp.data(), ws.dw_tmp.data());
    k::add_to<B, float>(ctx, G + sl.router, ws.dw_tmp.data(), d * e);
    k::add_to<B, float>(ctx, ws.dxn.data(), ws.tmp.data(), t * d);
}

// x_out = W2 act(W1 xn_ffn).
template <class B> void dense_ffn_forward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, float* x_out) {
    const FfnShape fs = ffn_shape(p.m, false);
    p.part(SP::dense_gemm);
    k::linear<B, float>(p.ctx, a.xn_ffn.data(), p.P + sl.w1, p.t, p.d, fs.n1, false, a.h.data());
    p.part(SP::elementwise);
    k::activation<B, float>(p.ctx, fs.act, a.h.data(), p.t, fs.f, a.a.data());
    p.part(SP::dense_gemm);
    k::linear<B, float>(p.ctx, a.a.data(), p.P + sl.w2, p.t, fs.f, p.d, false, x_out);
}

// dres: gradient of x_out; leaves the gradient of xn_ffn in ws.dxn.
template <class B>
void dense_ffn_backward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, const float* dres) {
    WorkspaceT<B>& ws = p.ws;
    const FfnShape fs = ffn_shape(p.m, false);
    p.part(SP::dense_gemm);
    k::linear_backward<B, float>(p.ctx, a.a.data(), p.P + sl.w2, dres, p.t, fs.f, p.d, false, ws.da.data(),
                                 p.G + sl.w2);
    p.part(SP::elementwise);
    k::activation_backward<B, float>(p.ctx, fs.act, a.h.data(), ws.da.data(), p.t, fs.f, ws.dh.data());
    p.part(SP::dense_gemm);
    k::linear_backward<B, float>(p.ctx, a.xn_ffn.data(), p.P + sl.w1, ws.dh.data(), p.t, p.d, fs.n1, false,
                                 ws.dxn.data(), p.G + sl.w1);
}

// x_out = x_mid + FFN(rmsnorm(x_mid)), the FFN a MoE or a dense one.
template <class B>
void ffn_forward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, const float* x_mid, float* x_out,
                 PassStats& stats) {
    p.part(SP::elementwise);
    k::rmsnorm<B, float>(p.ctx, x_mid, p.P + sl.ffn_norm, p.t, p.d, p.opt.norm_eps, a.xn_ffn.data(), a.rstd_ffn.data());
    if (sl.moe)
        moe_forward(p, sl, a, x_out, stats);
    else
        dense_ffn_forward(p, sl, a, x_out);
    p.part(SP::elementwise);
    k::add_to<B, float>(p.ctx, x_out, x_mid, p.t * p.d);
}

// dres: gradient of x_out in (the residual passes it to x_mid unchanged), of x_mid out.
template <class B>
void ffn_backward(const Pass<B>& p, const LayerSlots& sl, LayerActsT<B>& a, const float* x_mid, float* dres,
                  double aux_scale) {
    if (sl.moe)
        moe_backward(p, sl, a, dres, aux_scale);
    else
        dense_ffn_backward(p, sl, a, dres);
    p.part(SP::elementwise);
    k::rmsnorm_backward<B, float>(p.ctx, x_mid, p.P + sl.ffn_norm, a.rstd_ffn.data(), p.ws.dxn.data(), p.t, p.d,
                                  p.ws.tmp.data(), p.G + sl.ffn_norm);
    k::add_to<B, float>(p.ctx, dres, p.ws.tmp.data(), p.t * p.d);
}

// The LM head (D, V), or, tied, the embedding (V, D) read transposed.
template <class B> const float* head_weights(const Pass<B>& p) {
    return p.P + (p.L.lm_head < 0 ? p.L.embedding : p.L.lm_head);
}

// Final norm, LM head and the summed cross-entropy into stats.ce_sum; on a backward pass ws.logits
// is overwritten with the loss's gradient (scaled by ce_scale).
template <class B> void head_forward(const Pass<B>& p, const int32_t* targets, double ce_scale, PassStats& stats) {
    WorkspaceT<B>& ws = p.ws;
    const bool tied = p.L.lm_head < 0;
    p.part(SP::elementwise);
    k::rmsnorm<B, float>(p.ctx, ws.resid.back().data(), p.P + p.L.final_norm, p.t, p.d, p.opt.norm_eps, ws.xf.data(),
                         ws.rstd_f.data());
    p.part(SP::dense_gemm);
    k::linear<B, float>(p.ctx, ws.xf.data(), head_weights(p), p.t, p.d, p.m.vocab, tied, ws.logits.data());
    p.part(SP::elementwise);
    k::cross_entropy<B, float>(p.ctx, ws.logits.data(), targets, p.t, p.m.vocab, ce_scale, ws.ce_sum.data(),
                               p.G ? ws.logits.data() : nullptr);
    Bufs<B>::read(p.ctx, ws.ce_sum.data(), 1, &stats.ce_sum);
}

// Writes the gradient of the last residual snapshot into dres.
template <class B> void head_backward(const Pass<B>& p, float* dres) {
    WorkspaceT<B>& ws = p.ws;
    const bool tied = p.L.lm_head < 0;
    p.part(SP::dense_gemm);
    k::linear_backward<B, float>(p.ctx, ws.xf.data(), head_weights(p), ws.logits.data(), p.t, p.d, p.m.vocab, tied,
                                 ws.dxn.data(), p.G + (tied ? p.L.embedding : p.L.lm_head));
    p.part(SP::elementwise);
    k::rmsnorm_backward<B, float>(p.ctx, ws.resid.back().data(), p.P + p.L.final_norm, ws.rstd_f.data(), ws.dxn.data(),
                                  p.t, p.d, dres, p.G + p.L.final_norm);
}

// Model::forward_backward on backend B: params, grads, tokens and targets in B's memory.
template <class B>
double forward_backward_impl(const Model& model, k::Context<B>& ctx, WorkspaceT<B>& ws, const float* params,
                             const int32_t* tokens, const int32_t* targets, double ce_scale, double aux_scale,
                             float* grads, PassStats* stats, PartTimer* timer) {
    const sim::ModelConfig& config = model.config();
    const ParamLayout& layout = model.layout();
    const Pass<B> p(ctx, ws, config, model.options(), layout, params, grads, timer);
    // Layer l reads residual snapshot 2l (x_in), writes 2l + 1 (x_mid) and 2l + 2 (x_out).
    const auto resid = [&ws](int64_t i) { return ws.resid[sz(i)].data(); };
    PassStats local;
    local.tokens = ws.t;

    embed_forward(p, tokens);
    for (int64_t l = 0; l < config.layers; ++l) {
        const LayerSlots& sl = layout.layers[sz(l)];
        LayerActsT<B>& a = ws.layers[sz(l)];
        attention_forward(p, sl, a, resid(2 * l), resid(2 * l + 1));
        ffn_forward(p, sl, a, resid(2 * l + 1), resid(2 * l + 2), local);
    }
    head_forward(p, targets, ce_scale, local);
    const double objective = ce_scale * local.ce_sum + aux_scale * local.aux_loss;
    if (stats) stats->add(local);
    if (!grads) {
        if (timer) timer->stop();
        return objective;
    }

    float* dres = ws.d.data();  // gradient of the residual stream (T, D)
    head_backward(p, dres);
    for (int64_t l = config.layers - 1; l >= 0; --l) {
        const LayerSlots& sl = layout.layers[sz(l)];
        LayerActsT<B>& a = ws.layers[sz(l)];
        ffn_backward(p, sl, a, resid(2 * l + 1), dres, aux_scale);
        attention_backward(p, sl, a, resid(2 * l), dres);
    }
    embed_backward(p, tokens, dres);
    if (timer) timer->stop();
    return objective;
}

}  // namespace wiring

// The Cpu workspace (the type model.h forward-declares).
class Workspace : public wiring::WorkspaceT<kernels::Cpu> {};

}  // namespace moecast::train
