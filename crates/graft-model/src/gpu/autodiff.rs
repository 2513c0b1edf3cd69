//! The GPU operations on burn's `Autodiff` backend: the forward pass runs the inner backend's
//! kernel and keeps its inputs; the backward step runs the hand-written gradient kernels
//! ([`MobileNetGrads`]) instead of burn differentiating a chain of generic ops.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};

use super::ops::{LayerSpec, MobileNetGrads, MobileNetOps};

type Primitive<B> = <B as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// The BatchNorm vectors of a layer: `γ, β` (trainable), `μ, σ²` (running statistics).
type Norm<B> = [Primitive<B>; 4];

#[derive(Debug)]
struct DepthwiseBackward;

impl<B: Backend + MobileNetGrads> Backward<B, 4> for DepthwiseBackward {
    /// The layer's input, weight, BatchNorm vectors and spec.
    type State = (Primitive<B>, Primitive<B>, Norm<B>, LayerSpec);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [x_node, w_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, [gamma, beta, mean, var], spec) = ops.state;
        let (dx, dw, dgamma, dbeta) = B::depthwise_backward(grad, x, w, gamma, beta, mean, var, spec);
        for (node, g) in [(x_node, dx), (w_node, dw), (gamma_node, dgamma), (beta_node, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

/// The matmul output `z`, the BatchNorm vectors and the spec.
type AffineState<B> = (Primitive<B>, Norm<B>, LayerSpec);

/// `z, γ, β` get their gradients from the kernels.
fn affine_grads<B: Backend + MobileNetGrads>(
    parents: [Option<NodeId>; 3],
    grad: Primitive<B>,
    (z, [gamma, beta, mean, var], spec): AffineState<B>,
    grads: &mut Gradients,
) {
    let (dz, dgamma, dbeta) = B::affine_backward(grad, z, gamma, beta, mean, var, spec);
    for (node, g) in parents.into_iter().zip([dz, dgamma, dbeta]) {
        if let Some(id) = node {
            grads.register::<B>(id, g);
        }
    }
}

#[derive(Debug)]
struct AffineBackward;

impl<B: Backend + MobileNetGrads> Backward<B, 3> for AffineBackward {
    type State = AffineState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        affine_grads::<B>(ops.parents.map(|p| p.map(|n| n.id)), grad, ops.state, grads);
    }
}

/// [`AffineBackward`] with the block's residual as a fourth parent: its gradient is the
/// upstream gradient itself.
#[derive(Debug)]
struct AffineResidualBackward;

impl<B: Backend + MobileNetGrads> Backward<B, 4> for AffineResidualBackward {
    type State = AffineState<B>;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [z, gamma, beta, residual] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = residual {
            grads.register::<B>(node.id, grad.clone());
        }
        affine_grads::<B>([z, gamma, beta].map(|p| p.map(|n| n.id)), grad, ops.state, grads);
    }
}

#[derive(Debug)]
struct StemPatchesBackward;

impl<B: Backend + MobileNetGrads> Backward<B, 1> for StemPatchesBackward {
    /// The images' shape and the stride.
    type State = (burn::tensor::Shape, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            let (shape, stride) = ops.state;
            grads.register::<B>(node.id, B::stem_patches_backward(grad, shape, stride));
        }
    }
}

#[derive(Debug)]
struct DenseBackward;

impl<B: Backend + MobileNetGrads> Backward<B, 2> for DenseBackward {
    /// The rows and the weight.
    type State = (Primitive<B>, Primitive<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [x_node, w_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, w) = ops.state;
        if let Some(node) = w_node {
            let shape = burn::backend::TensorMetadata::shape(&w);
            grads.register::<B>(node.id, B::dense_weight_grad(grad.clone(), x, shape));
        }
        // The stem's patches are constants (images need no gradient): no matmul for them.
        if let Some(node) = x_node {
            grads.register::<B>(node.id, B::dense_input_grad(grad, w));
        }
    }
}

impl<B: Backend + MobileNetOps + MobileNetGrads, C: CheckpointStrategy> MobileNetOps for Autodiff<B, C> {
    fn dense(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node()];
        let (x, w) = (x.into_primitive(), weight.into_primitive());
        match DenseBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::dense(x.clone(), w.clone());
                prep.finish((x, w), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::dense(x, w)),
        }
    }

    fn depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), gamma.node(), beta.node()];
        let (x, w) = (x.into_primitive(), weight.into_primitive());
        let norm = [gamma.into_primitive(), beta.into_primitive(), mean.into_primitive(), var.into_primitive()];
        let forward = |x: Primitive<B>, w: Primitive<B>, [g, b, m, v]: Norm<B>| B::depthwise(x, w, g, b, m, v, spec);
        match DepthwiseBackward.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = forward(x.clone(), w.clone(), norm.clone());
                prep.finish((x, w, norm, spec), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x, w, norm)),
        }
    }

    fn affine(
        z: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> FloatTensor<Self> {
        affine_tracked::<B, C>(z, [gamma, beta, mean, var], None, spec)
    }

    fn affine_residual(
        z: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        spec: LayerSpec,
    ) -> FloatTensor<Self> {
        affine_tracked::<B, C>(z, [gamma, beta, mean, var], Some(residual), spec)
    }

    fn stem_patches(x: FloatTensor<Self>, stride: usize) -> FloatTensor<Self> {
        let node = x.node();
        let x = x.into_primitive();
        let shape = burn::backend::TensorMetadata::shape(&x);
        match StemPatchesBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((shape, stride), B::stem_patches(x, stride)),
            OpsKind::UnTracked(prep) => prep.finish(B::stem_patches(x, stride)),
        }
    }
}

fn affine_tracked<B: Backend + MobileNetOps + MobileNetGrads, C: CheckpointStrategy>(
    z: FloatTensor<Autodiff<B, C>>,
    [gamma, beta, mean, var]: [FloatTensor<Autodiff<B, C>>; 4],
    residual: Option<FloatTensor<Autodiff<B, C>>>,
    spec: LayerSpec,
) -> FloatTensor<Autodiff<B, C>> {
    let nodes = [z.node(), gamma.node(), beta.node()];
    let z = z.into_primitive();
    let norm = [gamma.into_primitive(), beta.into_primitive(), mean.into_primitive(), var.into_primitive()];
    match residual {
        None => {
            let forward = |z: Primitive<B>, [g, b, m, v]: Norm<B>| B::affine(z, g, b, m, v, spec);
            match AffineBackward.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let out = forward(z.clone(), norm.clone());
                    prep.finish((z, norm, spec), out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(z, norm)),
            }
        }
        Some(residual) => {
            let [z_node, gamma_node, beta_node] = nodes;
            let nodes = [z_node, gamma_node, beta_node, residual.node()];
            let r = residual.into_primitive();
            let forward = |z: Primitive<B>, [g, b, m, v]: Norm<B>, r| B::affine_residual(z, g, b, m, v, r, spec);
            match AffineResidualBackward.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(prep) => {
                    let out = forward(z.clone(), norm.clone(), r);
                    prep.finish((z, norm, spec), out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(z, norm, r)),
            }
        }
    }
}
