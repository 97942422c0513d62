"""The small LM (perplexity step, hf backend) on a CUDA device: it agrees with the CPU within the
tolerance README.md documents, and repeats itself byte for byte. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLE

torch = pytest.importorskip(
    "torch", reason="the hf backend needs torch: pip install 'curate[torch]'"
)
pytest.importorskip("transformers", reason="the hf backend needs transformers (curate[torch])")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device (torch.cuda.is_available() is False)",
    ),
]

# fp32 on the GPU vs the CPU: other kernels, other summation order; bf16 keeps 8 bits of mantissa.
FP32_RTOL = 1e-4
BF16_RTOL = 5e-2  # measured ~1e-2 relative perplexity; README.md "The small LM on a GPU"
MAX_TOKENS = 256


@pytest.fixture(scope="module")
def texts():
    return pq.read_table(SAMPLE / "part-0.parquet", columns=["text"]).column("text").slice(0, 64)


@pytest.fixture(scope="module")
def model(tmp_path_factory, texts) -> str:
    from curate.testing import tiny_causal_lm

    return tiny_causal_lm(
        tmp_path_factory.mktemp("lm"), texts.to_pylist(), n_positions=MAX_TOKENS, n_embd=64
    )


def backend(model: str, device: str, dtype: str | None = None):
    from curate_filters._lm_backends import HFBackend

    lm = HFBackend(model, device, max_tokens=MAX_TOKENS, batch_size=16)
    if dtype == "fp32":
        lm.model = lm.model.float()
    return lm


def test_cuda_fp32_matches_the_cpu(model, texts):
    cpu = backend(model, "cpu").perplexity(texts)
    gpu = backend(model, "cuda", "fp32").perplexity(texts)
    np.testing.assert_allclose(gpu, cpu, rtol=FP32_RTOL)


def test_cuda_bf16_is_near_fp32_but_not_equal(model, texts):
    lm = backend(model, "cuda")
    if lm.model.dtype != torch.bfloat16:
        pytest.skip(f"this GPU has no bf16 ({torch.cuda.get_device_name()}): the backend uses fp32")
    bf16 = lm.perplexity(texts)
    fp32 = backend(model, "cpu").perplexity(texts)
    np.testing.assert_allclose(bf16, fp32, rtol=BF16_RTOL)
    relative = np.abs(bf16 - fp32) / fp32
    print(
        f"bf16 vs fp32 relative perplexity: median {np.median(relative):.2e}, max", relative.max()
    )


def test_same_dtype_device_and_batching_give_the_same_bytes(model, texts):
    lm = backend(model, "cuda")
    first, again = lm.perplexity(texts), lm.perplexity(texts)
    assert first.tobytes() == again.tobytes()
