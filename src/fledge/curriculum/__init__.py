"""Environment parameters and curricula: samplers, lesson completion, and the run's controller.

`samplers` turns a parameter's current lesson into values for environments (each environment draws
from its own seeded generator, once per agent per episode); `lessons` holds the completion rule of a
lesson; `controller` is the run's curriculum state (lesson per parameter, the episode returns it
measures), asked by the training session after every environment step.
"""
