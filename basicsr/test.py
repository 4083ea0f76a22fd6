"""The test run behind ``python test.py -opt options/test/FISCNet.yml``: fuse every test set, score it."""
from pathlib import Path

from basicsr.data import build_dataset, build_test_loader
from basicsr.metrics.report import format_table
from basicsr.metrics.set_scorer import SetScorer, metric_names_from_options
from basicsr.models import RANDOM_WEIGHTS, check_model_options
from basicsr.models.fusion_engine import FusionEngine
from basicsr.utils.dist_util import barrier, gather_to_all, shard_for_this_rank
from basicsr.utils.errors import OptionError, report_user_errors, writing
from basicsr.utils.experiment import copy_option_file, make_run_dirs, run_scope
from basicsr.utils.img_util import write_image
from basicsr.utils.logger import get_env_info, get_root_logger, get_time_str
from basicsr.utils.options import dict_to_yaml, option_value, parse_options
from basicsr.utils.seed import set_random_seed


def check_weights(opt):
    """test.py fuses with trained weights only, unless ``random`` asks for untrained ones.

    Raises:
        OptionError: ``path.pretrain_network_g`` is not set.
    """
    if not (opt.get('path') or {}).get('pretrain_network_g'):
        raise OptionError('path.pretrain_network_g is not set: the network would fuse with untrained weights; '
                          'set it to a checkpoint (python scripts/download_pretrained_models.py fetches the released '
                          f"one), or to '{RANDOM_WEIGHTS}' for a smoke test with untrained weights")


def engine_options(opt, logger):
    """``opt`` for building the engine, with ``random`` weights meaning no checkpoint (logged)."""
    if opt['path']['pretrain_network_g'] != RANDOM_WEIGHTS:
        return opt
    logger.warning('path.pretrain_network_g: random: fusing with UNTRAINED weights (a smoke test, not results)')
    return dict(opt, path=dict(opt['path'], pretrain_network_g=None))


def test_pipeline(argv=None):
    opt, args = parse_options(is_train=False, argv=argv)
    check_weights(opt)
    with run_scope(opt, args.launcher):
        return fuse_and_score(opt, args)


def fuse_and_score(opt, args):
    """Fuse every test set of ``opt``, write the images and the metrics CSVs, log the mean table."""
    check_model_options(opt)
    metric_names = metric_names_from_options(opt.get('val'))
    # Pairing every set first means a missing partner stops the run before any work is done.
    datasets = {opt_set.get('name', key): (build_dataset(opt_set), opt_set)
                for key, opt_set in opt['datasets'].items()}
    make_run_dirs(opt, option_file=args.opt)
    barrier()  # the other processes write into the folders rank 0 just made
    log_file = Path(opt['path']['log']) / f"test_{opt['name']}_{get_time_str()}.log"
    with writing(log_file):
        logger = get_root_logger(log_file)
    logger.info(get_env_info())
    for note in args.released_notes:
        logger.info(f'released option file: {note}')
    logger.info('options:\n' + dict_to_yaml(opt))
    copy_option_file(args.opt, opt, args.opt_text)
    set_random_seed(opt['manual_seed'])

    engine = FusionEngine.from_options(engine_options(opt, logger))
    scores = {}
    for set_name, (dataset, set_opt) in datasets.items():
        # With several processes each fuses every world_size-th image of the set.
        loader = build_test_loader(shard_for_this_rank(dataset), set_opt, engine.device)
        save_dir = Path(opt['path']['visualization']) / set_name if option_value(opt, 'val.save_img') else None
        scorer = SetScorer(metric_names, option_value(opt, 'val.convention')) if metric_names else None
        suffix = f"_{opt['val']['suffix']}" if option_value(opt, 'val.suffix') else ''
        for result in engine.fuse_loader(loader, set_name):
            if save_dir is not None:
                write_image(save_dir / f'{result.stem}{suffix}.png', result.fused)
            if scorer:
                scorer.add(result.stem, result.item['ir'], result.item['vi'], result.fused)
        rate = sum(gather_to_all(engine.rate))
        logger.info(f'{set_name}: {len(dataset)} images fused at {rate:.2f} images/s'
                    + (f' -> {save_dir}' if save_dir else ''))
        if scorer:
            scorer.merge(gather_to_all((scorer.stems, scorer.rows)), order=[stem for stem, _ in dataset.samples])
            csv_path = Path(opt['path']['metrics']) / f'{set_name}.csv'
            with writing(csv_path):
                scorer.write_csv(csv_path)
            logger.info(f'{set_name}: metrics per image -> {csv_path}')
            scores[set_name] = scorer.rows
    if scores:
        table = format_table(scores, metric_names, label='set', with_std=False)
        logger.info(f"mean metrics ({option_value(opt, 'val.convention')} convention):\n{table}")
    return opt


def main():
    """The command line: one ``error: ...`` line and status 2 for a problem the user can fix."""
    report_user_errors(test_pipeline)


if __name__ == '__main__':
    main()
