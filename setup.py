from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [line.strip() for line in (here / 'requirements.txt').read_text().splitlines()
                if line.strip() and not line.startswith('#')]

setup(
    name='fiscnet',
    version='0.1.0',
    description='FISCNet infrared-visible image fusion in a BasicSR-style training and testing framework',
    long_description=(here / 'README.md').read_text(encoding='utf-8') if (here / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['basicsr', 'basicsr.*']),
    python_requires='>=3.9',
    install_requires=requirements,
    # The tests draw the training figures too, so they need the plotting extra's matplotlib.
    extras_require={'test': ['pytest>=7', 'matplotlib>=3.5'], 'plot': ['matplotlib>=3.5']},
)
