"""FusionModel: runs a fusion network on (infrared, visible) pairs and writes the fused images."""
import time
from pathlib import Path

import torch
from tqdm import tqdm

from basicsr.archs import build_network
from basicsr.utils.checkpoint import load_params, read_params
from basicsr.utils.color_util import rgb_to_ycrcb, ycrcb_to_rgb
from basicsr.utils.device import select_device
from basicsr.utils.img_util import to_uint8, write_image
from basicsr.utils.logger import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class FusionModel:
    """The network fuses the visible luma with the infrared image; the visible chroma is kept.

    ``feed_data`` takes a batch with ``ir`` (B, 1, H, W) and ``vis`` (B, 3, H, W) RGB in [0, 1];
    ``test`` computes ``fused_y`` (clamped to [0, 1]) and ``fused`` (B, 3, H, W) RGB.
    """

    def __init__(self, opt):
        self.opt = opt
        self.device = select_device(opt.get('num_gpu', 'auto'), opt.get('dist', False))
        self.net_g = build_network(opt['network_g']).to(self.device)
        path_opt = opt.get('path') or {}
        if path_opt.get('pretrain_network_g'):
            self.load_network(path_opt['pretrain_network_g'], path_opt.get('param_key_g', 'params_ema'),
                              path_opt.get('strict_load_g', True))
        self.net_g.eval()

    def load_network(self, path, param_key='params_ema', strict=True):
        params = read_params(path, param_key)
        load_params(self.net_g, params, strict, source=str(path))
        get_root_logger().info(f'loaded {type(self.net_g).__name__} weights from {path}')

    def feed_data(self, data):
        self.ir = data['ir'].to(self.device, non_blocking=True)
        self.vis = data['vis'].to(self.device, non_blocking=True)

    def fuse(self, net):
        """Run ``net`` on the fed batch; return the raw fused Y (not clamped) and the visible YCrCb."""
        vis_ycrcb = rgb_to_ycrcb(self.vis)
        return net(vis_ycrcb, self.ir), vis_ycrcb

    @torch.no_grad()
    def test(self):
        raw_y, vis_ycrcb = self.fuse(self.net_g)
        self.fused_y = raw_y.clamp(0, 1)
        self.fused = ycrcb_to_rgb(torch.cat([self.fused_y, vis_ycrcb[:, 1:]], dim=1))

    def fused_images_uint8(self):
        """The fused batch as a list of (H, W, 3) uint8 RGB arrays."""
        return [to_uint8(img.permute(1, 2, 0).float().cpu().numpy()) for img in self.fused]

    def fuse_set(self, loader, set_name, save_dir=None, suffix=None, on_image=None):
        """Fuse every pair of ``loader``; write PNGs to ``save_dir`` when given.

        Args:
            on_image: optional ``callback(stem, fused_uint8, data)`` for each image, e.g. metrics.

        Returns:
            float: images per second over the set (reading, fusing and writing included).
        """
        count, start = 0, time.perf_counter()
        for data in tqdm(loader, desc=set_name, unit='img', leave=False):
            self.feed_data(data)
            self.test()
            for i, fused in enumerate(self.fused_images_uint8()):
                stem = data['stem'][i]
                if save_dir is not None:
                    name = f'{stem}_{suffix}.png' if suffix else f'{stem}.png'
                    write_image(Path(save_dir) / name, fused)
                if on_image is not None:
                    on_image(stem, fused, {k: v[i] for k, v in data.items()})
                count += 1
        return count / max(time.perf_counter() - start, 1e-9)
