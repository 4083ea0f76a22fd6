from basicsr.utils.auto_import import import_modules

import_modules(__name__, __file__, '_loss')
