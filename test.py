"""Fuse the test sets of an option file: python test.py -opt options/test/FISCNet.yml"""
from pathlib import Path

from basicsr.data import build_dataset, build_test_loader
from basicsr.metrics.report import format_table
from basicsr.metrics.set_scorer import SetScorer, metric_names_from_options
from basicsr.models import build_model
from basicsr.utils.dist_util import barrier, close_dist, gather_to_all, init_dist_from_options, shard_for_this_rank
from basicsr.utils.errors import report_user_errors
from basicsr.utils.experiment import copy_option_file, make_run_dirs
from basicsr.utils.logger import close_file_handlers, get_env_info, get_root_logger, get_time_str
from basicsr.utils.memory import keep_freed_memory
from basicsr.utils.options import dict_to_yaml, parse_options
from basicsr.utils.seed import set_random_seed


def test_pipeline(argv=None):
    opt, args = parse_options(is_train=False, argv=argv)
    init_dist_from_options(opt, args.launcher)
    val_opt = opt.get('val') or {}
    metric_names = metric_names_from_options(val_opt)
    if opt.get('keep_freed_memory', True):
        keep_freed_memory()  # the network's and metrics' temporaries otherwise page-fault in for every image
    # Pairing every set first means a missing partner stops the run before any work is done.
    datasets = {opt_set.get('name', key): (build_dataset(opt_set), opt_set)
                for key, opt_set in opt['datasets'].items()}
    make_run_dirs(opt)
    barrier()  # the other processes write into the folders rank 0 just made
    log_file = Path(opt['path']['log']) / f"test_{opt['name']}_{get_time_str()}.log"
    logger = get_root_logger(log_file)
    logger.info(get_env_info())
    logger.info('options:\n' + dict_to_yaml(opt))
    copy_option_file(args.opt, opt)
    set_random_seed(opt['manual_seed'])

    model = build_model(opt)
    logger.info(f'device: {model.device}, execution: {model.execution}')
    scores = {}
    try:
        for set_name, (dataset, set_opt) in datasets.items():
            # With several processes each fuses every world_size-th image of the set.
            loader = build_test_loader(shard_for_this_rank(dataset), set_opt, model.device)
            save_dir = Path(opt['path']['visualization']) / set_name if val_opt.get('save_img', True) else None
            scorer = SetScorer(metric_names, val_opt.get('convention', 'tang')) if metric_names else None
            on_image = (lambda stem, fused, item: scorer.add(stem, item['ir'], item['vis'], fused)) if scorer else None
            rate = model.fuse_set(loader, set_name, save_dir, val_opt.get('suffix'), on_image)
            rate = sum(gather_to_all(rate))
            logger.info(f'{set_name}: {len(dataset)} images fused at {rate:.2f} images/s'
                        + (f' -> {save_dir}' if save_dir else ''))
            if scorer:
                scorer.merge(gather_to_all((scorer.stems, scorer.rows)), order=[stem for stem, _ in dataset.samples])
                csv_path = scorer.write_csv(Path(opt['path']['metrics']) / f'{set_name}.csv')
                logger.info(f'{set_name}: metrics per image -> {csv_path}')
                scores[set_name] = scorer.rows
        if scores:
            table = format_table(scores, metric_names, label='set', with_std=False)
            logger.info(f"mean metrics ({val_opt.get('convention', 'tang')} convention):\n{table}")
    finally:
        close_file_handlers()
        close_dist()
    return opt


if __name__ == '__main__':
    report_user_errors(test_pipeline)
