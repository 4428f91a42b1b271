"""Build the EfficientNet-Lite0 ONNX graph directly from numpy weights.

Mirrors ``efficientnet_lite_pytorch`` (itself a port of TF's ``efficientnet_lite_builder``):
ReLU6 everywhere (the Lite variants drop swish and squeeze-excitation for quantisation
friendliness), a fixed 32-channel stem and 1280-channel head, BatchNorm eps 1e-3, and
TF-style static "same" padding computed for a 224x224 input. That padding is asymmetric
(a stride-2 3x3 conv on 224 pads 0 before / 1 after), which is why every Conv carries
explicit ``pads`` instead of ``auto_pad``.

BatchNorm is folded into the preceding convolution in float64 so the exported graph is a
plain Conv/Clip/Add chain. Outputs:

* ``embedding`` [N, 1280]: global-average-pooled head features, L2-normalised in-graph;
* ``probs`` [N, 1000]: softmax over the ImageNet-1k logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from .efficientnet_io import (
    BUILDER_VERSION,
    HEAD_CHANNELS,
    INPUT_NAME,
    INPUT_SIZE,
    OUTPUT_EMBEDDING,
    OUTPUT_PROBS,
)

__all__ = [
    "BLOCKS",
    "BUILDER_VERSION",
    "INPUT_NAME",
    "INPUT_SIZE",
    "OUTPUT_EMBEDDING",
    "OUTPUT_PROBS",
    "BlockArgs",
    "build_efficientnet_lite0",
    "same_pads",
]

BN_EPS = 1e-3
STEM_CHANNELS = 32
OPSET = 17
# Keeps the in-graph L2 normalisation finite for an (unrealistic) all-zero feature vector.
NORM_EPS = 1e-12


@dataclass(frozen=True)
class BlockArgs:
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


# r1_k3_s11_e1_i32_o16, r2_k3_s22_e6_i16_o24, ... from efficientnet_lite_builder.py.
BLOCKS: tuple[BlockArgs, ...] = (
    BlockArgs(1, 3, 1, 1, 32, 16),
    BlockArgs(2, 3, 2, 6, 16, 24),
    BlockArgs(2, 5, 2, 6, 24, 40),
    BlockArgs(3, 3, 2, 6, 40, 80),
    BlockArgs(3, 5, 1, 6, 80, 112),
    BlockArgs(4, 5, 2, 6, 112, 192),
    BlockArgs(1, 3, 1, 6, 192, 320),
)


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) for one spatial axis of length ``size``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _GraphBuilder:
    def __init__(self, weights: Mapping[str, NDArray[np.float32]]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counter = 0

    def _name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def _get(self, key: str) -> NDArray[np.float64]:
        try:
            return np.asarray(self.weights[key], dtype=np.float64)
        except KeyError:
            raise ValueError(
                f"weights are missing {key!r}; not an EfficientNet-Lite0 checkpoint"
            ) from None

    def const(self, name: str, value: NDArray[np.float64] | NDArray[np.float32]) -> str:
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv_bn(
        self, x: str, conv: str, bn: str, *, size: int, stride: int, groups: int, relu6: bool
    ) -> str:
        weight = self._get(f"{conv}.weight")
        gamma, beta = self._get(f"{bn}.weight"), self._get(f"{bn}.bias")
        mean, var = self._get(f"{bn}.running_mean"), self._get(f"{bn}.running_var")
        scale = gamma / np.sqrt(var + BN_EPS)
        kernel = int(weight.shape[-1])
        before, after = same_pads(size, kernel, stride)
        w_name = self.const(f"{conv}.w", weight * scale[:, None, None, None])
        b_name = self.const(f"{conv}.b", beta - mean * scale)
        out = self._name(conv)
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w_name, b_name],
                [out],
                name=out,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[before, before, after, after],
                group=groups,
            )
        )
        return self.relu6(out) if relu6 else out

    def relu6(self, x: str) -> str:
        out = self._name("relu6")
        self.nodes.append(helper.make_node("Clip", [x, "clip_min", "clip_max"], [out], name=out))
        return out

    def add(self, a: str, b: str) -> str:
        out = self._name("skip")
        self.nodes.append(helper.make_node("Add", [a, b], [out], name=out))
        return out

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _mbconv(
    g: _GraphBuilder, x: str, idx: int, args: BlockArgs, in_ch: int, stride: int, size: int
) -> tuple[str, int]:
    prefix = f"_blocks.{idx}"
    hidden = in_ch * args.expand
    h = x
    if args.expand != 1:
        h = g.conv_bn(
            h, f"{prefix}._expand_conv", f"{prefix}._bn0", size=size, stride=1, groups=1, relu6=True
        )
    h = g.conv_bn(
        h,
        f"{prefix}._depthwise_conv",
        f"{prefix}._bn1",
        size=size,
        stride=stride,
        groups=hidden,
        relu6=True,
    )
    out_size = -(-size // stride)
    h = g.conv_bn(
        h,
        f"{prefix}._project_conv",
        f"{prefix}._bn2",
        size=out_size,
        stride=1,
        groups=1,
        relu6=False,
    )
    if stride == 1 and in_ch == args.out_ch:
        h = g.add(h, x)
    return h, out_size


def build_efficientnet_lite0(weights: Mapping[str, NDArray[np.float32]]) -> onnx.ModelProto:
    """Return a checked ONNX model (opset 17, dynamic batch) for the given state dict."""
    g = _GraphBuilder(weights)
    g.const("clip_min", np.array(0.0, dtype=np.float32))
    g.const("clip_max", np.array(6.0, dtype=np.float32))

    size = INPUT_SIZE
    x = g.conv_bn(INPUT_NAME, "_conv_stem", "_bn0", size=size, stride=2, groups=1, relu6=True)
    size = -(-size // 2)
    idx = 0
    for args in BLOCKS:
        in_ch, stride = args.in_ch, args.stride
        for _ in range(args.repeats):
            x, size = _mbconv(g, x, idx, args, in_ch, stride, size)
            in_ch, stride, idx = args.out_ch, 1, idx + 1
    x = g.conv_bn(x, "_conv_head", "_bn1", size=size, stride=1, groups=1, relu6=True)

    pooled = g.node("Flatten", [g.node("GlobalAveragePool", [x])], "pooled", axis=1)
    norm = g.node("ReduceL2", [pooled], axes=[1], keepdims=1)
    g.const("norm_eps", np.array(NORM_EPS, dtype=np.float32))
    norm = g.node("Max", [norm, "norm_eps"])
    g.node("Div", [pooled, norm], OUTPUT_EMBEDDING)

    fc_w = g.const("_fc.w", g._get("_fc.weight"))
    fc_b = g.const("_fc.b", g._get("_fc.bias"))
    logits = g.node("Gemm", [pooled, fc_w, fc_b], "logits", transB=1)
    g.node("Softmax", [logits], OUTPUT_PROBS, axis=-1)

    num_classes = int(weights["_fc.bias"].shape[0])
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [
            helper.make_tensor_value_info(
                INPUT_NAME, TensorProto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE]
            )
        ],
        [
            helper.make_tensor_value_info(
                OUTPUT_EMBEDDING, TensorProto.FLOAT, ["batch", HEAD_CHANNELS]
            ),
            helper.make_tensor_value_info(OUTPUT_PROBS, TensorProto.FLOAT, ["batch", num_classes]),
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="pixdex",
        producer_version=str(BUILDER_VERSION),
    )
    # onnxruntime releases lag onnx; pin an IR version every runtime since 1.15 accepts.
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
