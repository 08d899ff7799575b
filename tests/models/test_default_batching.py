"""create_model turns on the model-level kernel generation for 3T models (the fast default path of issue 13)."""

import torch

from conv3t.models import create_model
from conv3t.nn import batch_kernel_generation, shares_kernel_generation


def test_3t_models_share_generation_and_3d_models_do_not_need_it():
    assert shares_kernel_generation(create_model("resnet10_3t", 3, base_width=4))
    assert shares_kernel_generation(create_model("googlenet_3t", 3, aux_logits=False))
    assert not shares_kernel_generation(create_model("resnet10_3d", 3, base_width=4))


def test_default_path_equals_layerwise_generation():
    torch.manual_seed(0)
    model = create_model("resnet10_3t", 3, base_width=4)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "rotation"):
                m.rotation.uniform_(-0.3, 0.3)
    x = torch.randn(2, 3, 4, 32, 32)
    shared = model(x).sum()
    shared.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    batch_kernel_generation(model, enabled=False)
    model.zero_grad()
    alone = model(x).sum()
    alone.backward()
    torch.testing.assert_close(shared, alone, rtol=0, atol=0)
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-5, atol=1e-7, msg=n)
