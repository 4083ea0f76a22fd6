"""Name -> class/function registries that YAML ``type:`` keys are resolved through."""


class Registry:
    """A mapping from names to objects, filled with the :meth:`register` decorator.

    Example:
        >>> ARCHS = Registry('arch')
        >>> @ARCHS.register()
        ... class Net: ...
        >>> ARCHS.get('Net') is Net
        True
    """

    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def _do_register(self, name, obj):
        if name in self._obj_map:
            raise KeyError(f"'{name}' is already registered in the {self._name} registry")
        self._obj_map[name] = obj

    def register(self, obj=None, name=None):
        """Register ``obj`` under ``name`` (default: its ``__name__``); usable as a decorator."""
        if obj is None:
            def deco(func_or_class):
                self._do_register(name or func_or_class.__name__, func_or_class)
                return func_or_class
            return deco
        self._do_register(name or obj.__name__, obj)
        return obj

    def get(self, name):
        if name not in self._obj_map:
            available = ', '.join(sorted(self._obj_map)) or 'nothing'
            raise KeyError(f"no {self._name} named '{name}'; the {self._name} registry holds: {available}")
        return self._obj_map[name]

    def __contains__(self, name):
        return name in self._obj_map

    def __iter__(self):
        return iter(sorted(self._obj_map))

    def keys(self):
        return sorted(self._obj_map)


ARCH_REGISTRY = Registry('arch')
DATASET_REGISTRY = Registry('dataset')
LOSS_REGISTRY = Registry('loss')
MODEL_REGISTRY = Registry('model')
METRIC_REGISTRY = Registry('metric')
OPTIMIZER_REGISTRY = Registry('optimizer')
SCHEDULER_REGISTRY = Registry('scheduler')
