import os

# Kernels started by the tests inherit these (see Makefile for why).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def pytest_addoption(parser):
    parser.addoption(
        "--regen-results",
        action="store_true",
        help="overwrite the stored notebook regression results with the new execution",
    )
