"""``python -m energy_report`` is the ``energy-report`` command."""

from energy_report.cli import main_exit

main_exit()
