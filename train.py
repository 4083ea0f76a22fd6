"""Train a fusion network: python train.py -opt options/train/FISCNet.yml [--auto_resume]

Several GPUs or nodes: torchrun --nproc_per_node N train.py -opt ... --launcher pytorch
(or srun ... --launcher slurm); the same option file runs on 1 or N processes.
The loop lives in basicsr/train.py.
"""
from basicsr.utils.options import build_arg_parser

if __name__ == '__main__':
    build_arg_parser(is_train=True).parse_args()  # --help and usage errors answer before torch loads
    from basicsr.train import main
    main()
