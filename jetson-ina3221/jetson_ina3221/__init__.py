"""jetson-ina3221: power, voltage, current and energy of every INA3221 rail of an NVIDIA Jetson board."""

__version__ = "0.1.0"
