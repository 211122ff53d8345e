"""Pictures of training and of what a convnet computes, one call from a student's model.

matplotlib is an optional extra (``pip install pycnn[plot]``), imported only when a figure is
drawn. Every figure function returns the matplotlib Figure (the arrays it drew attached as
attributes) and saves it as a PNG when given ``to_file=``::

    from pycnn import viz
    viz.plot_history(history)
    viz.show_images(test_images, test_labels, model.predict(test_images), n=25)
    viz.feature_maps(model, test_images[0], "conv2d")
    viz.filters(model, "conv2d")
    viz.class_activation_map(model, test_images[0])
    viz.plot_confusion_matrix(test_labels, model.predict(test_images))
    viz.conv_arithmetic(5, 3, strides=2, padding="same")
    viz.plot_model(model, show_shapes=True)
"""
from .conv_arithmetic import conv_arithmetic, formula as conv_formula, output_size
from .history import plot_history
from .images import show_images
from .inside import (activations, class_activation_map, feature_maps, filter_patterns, filters,
                     grad_cam)
from .metrics_plots import (auc, average_precision, confusion_matrix, plot_confusion_matrix,
                            plot_precision_recall_curve, plot_roc_curve, precision_recall_curve,
                            roc_curve)
from .model_plot import model_layout, plot_model
from ..utils.layer_stats import layer_stats

__all__ = ["activations", "auc", "average_precision", "class_activation_map",
           "confusion_matrix", "conv_arithmetic", "conv_formula", "feature_maps",
           "filter_patterns", "filters", "grad_cam", "layer_stats", "model_layout",
           "output_size", "plot_confusion_matrix", "plot_history", "plot_model",
           "plot_precision_recall_curve", "plot_roc_curve", "precision_recall_curve",
           "roc_curve", "show_images"]
